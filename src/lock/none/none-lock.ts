/**
 * No lock at all: only the store's guarded writes stand between buyers and overselling. A baseline for
 * measurement, and proof that the database, not the lock, is the last word.
 */
import type { WriteGuard } from "../../domain/write-guard.js";
import {
  checkLockKeys,
  type LockOptions,
  type LockProvider,
  type ManyLockOptions,
  type ManyLockWork,
} from "../lock-provider.js";

export class NoneLock implements LockProvider {
  readonly kind = "none";

  async init(): Promise<void> {}
  async close(): Promise<void> {}
  async ping(): Promise<void> {}

  async withLock<T>(key: string, _options: LockOptions, work: (guard: WriteGuard) => Promise<T>): Promise<T> {
    return work({ lockKey: key, fence: null, signal: new AbortController().signal });
  }

  async withLocks<T>(keys: readonly string[], _options: ManyLockOptions, work: ManyLockWork<T>): Promise<T> {
    checkLockKeys(keys);
    // A signal per key, never aborted, as every provider gives one per guard: a store listening on each
    // part's signal must not pile its listeners onto a shared one.
    const granted = new Map(
      keys.map((key) => [key, { lockKey: key, fence: null, signal: new AbortController().signal }] as const),
    );
    return work(granted, new Map());
  }
}
