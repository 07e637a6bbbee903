/**
 * A first-come-first-served queue per lock key inside one process. The buyers of one instance line up
 * here before they contend for the distributed lock, so an instance sends at most one contender per key
 * to the lock server instead of one poller per request: less load on the server, and within an instance
 * the lock goes in arrival order rather than to whichever poller happens to knock first.
 */
import { LockBusyError } from "../domain/lock-errors.js";

interface Waiter {
  grant: () => void;
}

export class LocalQueue {
  /** Per key: the holder first, then the waiters in arrival order. */
  readonly #lines = new Map<string, Waiter[]>();

  /**
   * Resolves, in arrival order, to a function that lets the next one in; rejects with LockBusyError when
   * the turn has not come within `waitMs`.
   */
  enter(key: string, waitMs: number): Promise<() => void> {
    let line = this.#lines.get(key);
    if (line === undefined) {
      line = [];
      this.#lines.set(key, line);
    }
    const current = line;
    return new Promise((resolve, reject) => {
      const timeout = { timer: undefined as NodeJS.Timeout | undefined };
      const waiter: Waiter = {
        grant: () => {
          clearTimeout(timeout.timer);
          resolve(() => this.#leave(key, current, waiter));
        },
      };
      current.push(waiter);
      if (current.length === 1) return waiter.grant();
      timeout.timer = setTimeout(() => {
        // The grant clears this timer, so the waiter is still in line behind someone here.
        current.splice(current.indexOf(waiter), 1);
        reject(new LockBusyError(key, waitMs));
      }, waitMs);
    });
  }

  #leave(key: string, line: Waiter[], waiter: Waiter): void {
    if (line[0] !== waiter) return;
    line.shift();
    if (line.length === 0) this.#lines.delete(key);
    else line[0]!.grant();
  }
}
