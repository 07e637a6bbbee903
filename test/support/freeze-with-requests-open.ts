/**
 * Catches a process with requests it took still unanswered: stops it (SIGSTOP), waits a moment for what
 * it had already written to arrive, and keeps it stopped only if requests are still open; otherwise lets
 * it run again until enough are open, and tries again. Returns when it is stopped so; the caller then
 * kills it, and the kill takes those requests with it. A SIGKILL sent at once can land after a fast
 * process has answered everything (CI failed so: the fault matrix at 46e6784, `boxoffice up` at 68645e8).
 */
import { setTimeout as sleep } from "node:timers/promises";

export async function freezeWithRequestsOpen(
  signal: (name: "SIGSTOP" | "SIGCONT") => void,
  open: () => number,
  options: { what: string; atLeast?: number; attempts?: number; log?: (line: string) => void },
): Promise<number> {
  const atLeast = options.atLeast ?? 3;
  const attempts = options.attempts ?? 20;
  for (let attempt = 1; ; attempt++) {
    signal("SIGSTOP");
    await sleep(100);
    if (open() >= 1) {
      options.log?.(`# stopped ${attempt}× to catch ${options.what} with ${open()} requests open`);
      return Date.now();
    }
    signal("SIGCONT");
    if (attempt >= attempts) throw new Error(`never caught ${options.what} with requests open`);
    const deadline = Date.now() + 30_000;
    while (open() < atLeast) {
      if (Date.now() > deadline) throw new Error(`${options.what}: never ${atLeast} requests open`);
      await sleep(5);
    }
  }
}
