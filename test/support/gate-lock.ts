/**
 * A lock provider for unit tests of the layers above the lock: it holds every batch at a gate until the
 * test opens it, and can be told to fail (busy, unreachable) the way a real provider does.
 */
import type {
  LockOptions,
  LockProvider,
  ManyLockOptions,
  ManyLockWork,
} from "../../src/lock/lock-provider.js";
import { withEachLock } from "../../src/lock/each-lock.js";
import type { WriteGuard } from "../../src/domain/write-guard.js";

export class GateLock implements LockProvider {
  readonly kind = "gate";
  /** Thrown by withLock instead of running the work. */
  failWith: Error | null = null;
  /** Thrown by ping. */
  pingFailure: Error | null = null;
  /** How many times withLock was entered. */
  entered = 0;
  #gate: Promise<void> = Promise.resolve();
  #openGate: () => void = () => {};
  #waiters: (() => void)[] = [];

  async init(): Promise<void> {}
  async close(): Promise<void> {
    this.open();
  }
  async ping(): Promise<void> {
    if (this.pingFailure) throw this.pingFailure;
  }

  /** From now on, batches wait at the gate. */
  shut(): void {
    this.#gate = new Promise((resolve) => (this.#openGate = resolve));
  }

  open(): void {
    this.#openGate();
  }

  /** Resolves once withLock has been entered `count` times in all. */
  async enteredAtLeast(count: number): Promise<void> {
    while (this.entered < count) await new Promise<void>((resolve) => this.#waiters.push(resolve));
  }

  async withLock<T>(key: string, _options: LockOptions, work: (guard: WriteGuard) => Promise<T>): Promise<T> {
    this.entered++;
    for (const wake of this.#waiters.splice(0)) wake();
    if (this.failWith) throw this.failWith;
    await this.#gate;
    return work({ lockKey: key, fence: null, signal: new AbortController().signal });
  }

  withLocks<T>(keys: readonly string[], options: ManyLockOptions, work: ManyLockWork<T>): Promise<T> {
    return withEachLock(this, keys, options, work);
  }
}
