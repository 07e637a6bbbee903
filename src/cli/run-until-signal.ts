/**
 * Keeps a started service running until SIGTERM or SIGINT, then closes it cleanly and exits. A second
 * signal while closing exits at once. A process started by a supervisor with an IPC channel also stops
 * when that channel closes, so that no instance outlives a supervisor that was killed.
 */
import type { Logger } from "../log/logger.js";

export function runUntilSignal(service: { close(): Promise<void> }, log: Logger): void {
  let stopping = false;
  const stop = (reason: string) => {
    if (stopping) {
      log.error(`${reason} again, exiting now`);
      process.exit(1);
    }
    stopping = true;
    service.close().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, "close failed");
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", () => stop("SIGTERM"));
  process.on("SIGINT", () => stop("SIGINT"));
  if (process.connected) process.once("disconnect", () => stop("supervisor gone"));
}
