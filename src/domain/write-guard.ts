/**
 * What a lock hands down to a write, and what a store checks before it commits. It lives below both
 * `lock/` (which makes guards) and `store/` (which honours them), so neither imports the other: a write
 * guarded by a fencing token is a domain notion, whatever lock issued the token or database keeps it.
 */

/**
 * A store refuses a write whose fence is older than the highest it has applied for the same lock key
 * (FencedOutError), and refuses to commit once `signal` is aborted (LockLostError).
 */
export interface WriteGuard {
  /** The lock key the writer holds ("global" or "event:<id>"). */
  lockKey: string;
  /** The fencing token the lock issued; grows monotonically per key. Null when the lock has none. */
  fence: number | null;
  /** Aborted when the lease was lost: the store must not commit after that. */
  signal: AbortSignal;
  /**
   * Set by a lock provider that locks inside the store's own transaction (PostgreSQL advisory
   * transaction locks): the store takes the lock as the transaction's first statement, waiting at most
   * `waitMs`, and it is released by the commit.
   */
  transactionLock?: { waitMs: number };
}
