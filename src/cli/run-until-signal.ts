/**
 * Keeps a started service running until SIGTERM or SIGINT, then closes it cleanly and exits. A second
 * signal while closing exits at once.
 */
export function runUntilSignal(service: { close(): Promise<void> }, name: string): void {
  let stopping = false;
  const stop = (signal: NodeJS.Signals) => {
    if (stopping) {
      console.error(`${name}: ${signal} again, exiting now`);
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
  process.on("SIGTERM", stop);
  process.on("SIGINT", stop);
}
