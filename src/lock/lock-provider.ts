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

/** What withLocks asks for: a lease, and no wait (it never waits for a busy key: see withLocks). */
export interface ManyLockOptions {
  /** How long each lease lasts unless renewed. */
  leaseMs: number;
  /**
   * Only for a lock taken inside the store's own transaction (postgres), which cannot refuse a busy key
   * before that transaction runs: how long the store waits for each key there. Default 0 (one try).
   */
  transactionWaitMs?: number;
}

/**
 * The work of withLocks: `granted` holds a guard per key taken (each with its own fence and signal),
 * `refused` the error of each key not taken (LockBusyError when someone else holds it).
 */
export type ManyLockWork<T> = (
  granted: ReadonlyMap<string, WriteGuard>,
  refused: ReadonlyMap<string, Error>,
) => Promise<T>;

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
  /**
   * Runs `work` holding every key of `keys` that is free right now, taken in one backend operation
   * where the backend allows it, each with its own fencing token. A busy key is not waited for: waiting
   * for one key while holding others is how two instances that take several keys deadlock or livelock.
   * The caller decides when to try the refused keys again. All held leases are renewed together (one
   * operation every `leaseMs / 3`); a key whose lease is lost has its own guard's signal aborted, the
   * others' work goes on. When `work` settles, every held key is released in one operation
   * (compare-and-delete: only what this holder owns). `work`'s errors pass through unchanged.
   *
   * Rejects with RangeError, before touching the backend, when `keys` is empty or names a key twice;
   * with LockUnavailableError (without running `work`) when the backend did not answer.
   */
  withLocks<T>(keys: readonly string[], options: ManyLockOptions, work: ManyLockWork<T>): Promise<T>;
  /**
   * Optional: calls `listener` each time this provider learns that `key` was released (by any holder,
   * in any instance it can hear of), until the returned function is called. A hint only, for waiters
   * to try again at once instead of at the end of their backoff: notifications may be late, lost or
   * spurious, so correctness stays with the atomic acquire and the fences. A provider without it (or
   * one whose waits happen elsewhere, like postgres in the store's transaction) leaves waiters to their
   * backoff.
   */
  onReleased?(key: string, listener: () => void): () => void;
}

/** The checks every withLocks makes first: keys is not empty and names no key twice. */
export function checkLockKeys(keys: readonly string[]): void {
  if (keys.length === 0) throw new RangeError("withLocks needs at least one key");
  if (new Set(keys).size !== keys.length) throw new RangeError("withLocks was given a key twice");
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
