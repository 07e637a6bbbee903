/**
 * Keeps a started service running until SIGTERM or SIGINT, then closes it cleanly and exits. A second
 * signal while closing exits at once. A process started by a supervisor with an IPC channel also stops
 * when that channel closes, so that no instance outlives a supervisor that was killed.
 */
export function runUntilSignal(service: { close(): Promise<void> }, name: string): void {
  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) {
      console.error(`${name}: ${reason} again, exiting now`);
      process.exit(1);
    }
    stopping = true;
    service.close().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`${name}: close failed`, error);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  if (process.connected) process.once("disconnect", () => stop("supervisor gone"));
}
