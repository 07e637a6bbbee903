/**
 * PostgreSQL advisory locks, transaction-scoped: the store takes `pg_advisory_xact_lock(<key>)` as the
 * first statement of its own write transaction (WriteGuard.transactionLock) after `SET LOCAL
 * lock_timeout`, and the commit or rollback releases it. Nothing outlives the transaction, so this is
 * safe behind PgBouncer in transaction mode, and a holder that dies or is cut off loses the lock with
 * its transaction. There is no lease to renew and no fencing token: the lock and the write are one
 * transaction, so a lock that is lost is a write that is rolled back.
 *
 * withLocks grants every key at once without a round trip of its own: each guard carries the
 * transaction lock, and the store takes them all inside its one multi-event transaction (in key order,
 * in the same pipelined round trip as its reads: see the PostgreSQL store's executeMany), where a key
 * still busy after the wait fails only its own events (LockBusyError) and the others commit. So here the
 * busy keys are found by the store, not refused by this provider. (Note: inside that transaction the
 * locks are taken in one order by every instance and PostgreSQL detects deadlocks; a try-lock in one
 * statement, refusing busy keys at once, is the store's to do.)
 *
 * This provider itself only keeps a small pool for ping() (/ready). The advisory key of a lock key is
 * src/postgres/advisory-key.ts, shared with the store.
 */
import type { Pool } from "pg";
import type { WriteGuard } from "../../domain/write-guard.js";
import { LockBusyError, LockUnavailableError } from "../../domain/lock-errors.js";
import {
  checkLockKeys,
  type LockOptions,
  type LockProvider,
  type ManyLockOptions,
  type ManyLockWork,
} from "../lock-provider.js";

/** PostgreSQL's SQLSTATE for lock_not_available, raised when `lock_timeout` runs out. */
const LOCK_NOT_AVAILABLE = "55P03";

/**
 * Maps PostgreSQL's lock timeout (SQLSTATE 55P03, from `SET LOCAL lock_timeout`) to LockBusyError;
 * returns null for any other error, which the store maps as usual.
 */
export function lockErrorFromPostgres(error: unknown, lockKey: string, waitMs: number): LockBusyError | null {
  const code = (error as { code?: unknown } | null)?.code;
  return code === LOCK_NOT_AVAILABLE ? new LockBusyError(lockKey, waitMs, error) : null;
}

export interface PostgresLockOptions {
  /** The database whose advisory locks are used: the store's own. */
  url: string;
  /** ping() gives up after this long. */
  connectTimeoutMs?: number;
}

/**
 * A signal never aborted: the lock cannot be lost while its transaction is open. One per guard, as every
 * provider gives: a store listening on each part's signal must not pile its listeners onto a shared one.
 */
const never = (): AbortSignal => new AbortController().signal;

export class PostgresLock implements LockProvider {
  readonly kind = "postgres";
  readonly #url: string;
  readonly #connectTimeoutMs: number;
  #pool: Pool | null = null;

  constructor(options: PostgresLockOptions) {
    this.#url = options.url;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 2000;
  }

  async init(): Promise<void> {
    const { default: pg } = await import("pg");
    const pool = new pg.Pool({
      connectionString: this.#url,
      max: 1,
      connectionTimeoutMillis: this.#connectTimeoutMs,
      idleTimeoutMillis: 10_000,
    });
    // An idle client that loses its server emits here; the next ping() reports it.
    pool.on("error", () => undefined);
    this.#pool = pool;
  }

  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = null;
    await pool?.end();
  }

  async ping(): Promise<void> {
    if (this.#pool === null) throw new LockUnavailableError("postgres lock is not initialised");
    try {
      await this.#pool.query("SELECT 1");
    } catch (error) {
      throw new LockUnavailableError("PostgreSQL does not answer", error);
    }
  }

  async withLock<T>(key: string, options: LockOptions, work: (guard: WriteGuard) => Promise<T>): Promise<T> {
    return work({ lockKey: key, fence: null, signal: never(), transactionLock: { waitMs: options.waitMs } });
  }

  /**
   * Grants every key, each guard with a transaction lock for the store to take within
   * `transactionWaitMs`.
   */
  async withLocks<T>(keys: readonly string[], options: ManyLockOptions, work: ManyLockWork<T>): Promise<T> {
    checkLockKeys(keys);
    const transactionLock = { waitMs: options.transactionWaitMs ?? 0 };
    const granted = new Map(
      keys.map((key) => [key, { lockKey: key, fence: null, signal: never(), transactionLock }] as const),
    );
    return work(granted, new Map());
  }
}
