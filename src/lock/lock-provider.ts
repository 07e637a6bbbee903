/**
 * Distributed locks for the sell path, in node-redlock's `using` shape: acquire within a bounded wait,
 * renew the lease while the work runs, abort the work through its AbortSignal when the lease is lost,
 * and release only what this holder owns. Correctness never rests on the lock alone: the work passes the
 * WriteGuard (fence and signal) down to the store, which refuses stale writers.
 */
import type { WriteGuard } from "../domain/write-guard.js";

export interface LockOptions {
  /** How long the lease lasts unless renewed. */
  leaseMs: number;
  /** How long to wait for the lock before giving up with LockBusyError. */
  waitMs: number;
}

export interface LockProvider {
  /** "file", "redis", "redlock", "postgres" or "none": shown on /ready and in metrics. */
  readonly kind: string;
  /** Connects; call once before use. */
  init(): Promise<void>;
  /** Releases every connection and timer; idempotent. */
  close(): Promise<void>;
  /** Resolves when the lock backend answers; throws LockUnavailableError otherwise. */
  ping(): Promise<void>;
  /**
   * Runs `work` while holding `key`. Throws LockBusyError (wait exceeded), LockUnavailableError
   * (backend down, no quorum) or LockLostError (lease lost while working); `work`'s own errors pass
   * through unchanged. The lock is released when `work` settles.
   */
  withLock<T>(key: string, options: LockOptions, work: (guard: WriteGuard) => Promise<T>): Promise<T>;
}

/** Which key the sell path locks: design A's database-wide lock (docs/architecture.md), or one per event. */
export type LockScope = "global" | "event";

export function lockKeyFor(scope: LockScope, eventId: string): string {
  return scope === "global" ? "global" : `event:${eventId}`;
}

/**
 * How long the bookkeeping of an unused lock key (a Redis fence counter, a file-lock row, a store's
 * fence row) is kept. Fencing tokens are at least their issuer's wall clock in µs, so a key forgotten
 * after this long restarts above every token it issued, as long as no token ran ahead of the clock, and
 * no clock stepped back, by this much: a day, against leases of seconds and clock steps of seconds.
 */
export const KEY_IDLE_MS = 24 * 60 * 60 * 1000;
