/**
 * The PostgreSQL store's connections and transactions: the pool, the transaction runner (one READ
 * COMMITTED transaction with one durable commit, its settings and the statements it opens with sent as
 * one pipeline with BEGIN), one-round-trip reads, and what happens to a connection that failed.
 *
 * No session state is kept across transactions (every setting is transaction-local, every advisory lock
 * is transaction-scoped, statements are unnamed), so it works behind PgBouncer in transaction mode.
 */
import pg from "pg";
import { LockBusyError, LockLostError } from "../../domain/lock-errors.js";
import type { WriteGuard } from "../../domain/write-guard.js";
import { advisoryKeyFor } from "../../postgres/advisory-key.js";
import { StoreUnavailableError } from "../store-errors.js";
import { sqlStateOf, toStoreError } from "./postgres-errors.js";
import type { PipelineStatement } from "./postgres-pipeline.js";
import { failedStatementOf, runPipeline } from "./postgres-pipeline.js";

const DEFAULT_CONNECT_TIMEOUT_MS = 2000;
/** The client gives up on a statement this long after the server should have cancelled it itself. */
const CLIENT_TIMEOUT_SLACK_MS = 2000;

/** What a transaction's work runs statements through. */
export interface Transaction {
  rows<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<R[]>;
  /** Several parameterised statements in one round trip; the rows of each. */
  pipeline(statements: readonly PipelineStatement[]): Promise<OpeningRows>;
  /**
   * The transaction's last statements and its COMMIT in one round trip (after the guard's lease is
   * checked, as before any COMMIT); the rows of each statement. The transaction is over: `work` must
   * return without another statement. A statement that fails rolls everything back (the server skips
   * the COMMIT); a failed COMMIT or connection counts as a failed commit (isCommitFailure).
   */
  commit(statements: readonly PipelineStatement[]): Promise<OpeningRows>;
}

/** The rows of each statement a transaction sent with its BEGIN, in order. */
export type OpeningRows = unknown[][];

/** For errors transaction() threw because an opening statement failed: that statement's index. */
const openingFailures = new WeakMap<object, number>();

/**
 * Which of transaction()'s `opening` statements failed the transaction that threw `error` (0 is the
 * first), or null when it failed elsewhere: one transaction opening several units of work (events)
 * tells by it which unit failed.
 */
export function failedOpeningOf(error: unknown): number | null {
  return typeof error === "object" && error !== null ? (openingFailures.get(error) ?? null) : null;
}

/** The errors transaction() threw because COMMIT failed. */
const commitFailures = new WeakSet<object>();

/** Whether transaction() threw `error` because its COMMIT failed (so nothing of it was committed). */
export function isCommitFailure(error: unknown): boolean {
  return typeof error === "object" && error !== null && commitFailures.has(error);
}

export interface PostgresPoolOptions {
  /** The connection string, without boxoffice's own `?schema=`. */
  connectionString: string;
  poolSize: number;
  statementTimeoutMs: number;
  connectTimeoutMs?: number;
}

export class PostgresPool {
  readonly #options: PostgresPoolOptions;
  #pool: pg.Pool | null = null;

  constructor(options: PostgresPoolOptions) {
    this.#options = options;
  }

  get isOpen(): boolean {
    return this.#pool !== null;
  }

  /** Creates the pool (no connection yet). */
  open(): void {
    const pool = new pg.Pool({
      connectionString: this.#options.connectionString,
      max: this.#options.poolSize,
      connectionTimeoutMillis: this.#options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 10_000,
      // Backstop for a server that stops answering altogether (the server's own statement_timeout
      // cannot fire then); such a client is destroyed, never reused.
      query_timeout: this.#options.statementTimeoutMs + CLIENT_TIMEOUT_SLACK_MS,
      keepAlive: true,
      application_name: "boxoffice",
    });
    // An idle connection that dies (server restart) is dropped by the pool; the next checkout reconnects.
    pool.on("error", () => undefined);
    this.#pool = pool;
  }

  /** Ends every connection; idempotent. */
  async end(): Promise<void> {
    const pool = this.#pool;
    this.#pool = null;
    await pool?.end();
  }

  /**
   * A pooled connection; give it back with `release`. A connection that dies while checked out also
   * emits 'error' on the client (beside failing the running query): without a listener that would crash
   * the process, so one is attached until the client goes back to the pool.
   */
  async connect(): Promise<pg.PoolClient> {
    const pool = this.#pool;
    if (!pool) throw new StoreUnavailableError("the PostgreSQL store is not open");
    try {
      const client = await pool.connect();
      client.on("error", ignoreClientError);
      return client;
    } catch (error) {
      throw toStoreError(error, "waiting for a connection");
    }
  }

  /** Back to the pool, or destroyed when its connection failed. */
  release(client: pg.PoolClient, broken: Error | undefined): void {
    client.off("error", ignoreClientError);
    client.release(broken);
  }

  /**
   * Runs `work` in one READ COMMITTED transaction with one durable commit. The first round trip sets the
   * transaction up (#prelude) and runs the `opening` statements, whose rows `work` gets. Before COMMIT the
   * guard's signal is checked: a writer whose lease was lost commits nothing. `work` may send its last
   * statements with the COMMIT (tx.commit): a transaction of two round trips instead of three.
   */
  async transaction<T>(
    guard: WriteGuard | null,
    work: (tx: Transaction, opening: OpeningRows) => Promise<T>,
    opening: readonly PipelineStatement[] = [],
  ): Promise<T> {
    const client = await this.connect();
    // A client whose connection failed (no SQLSTATE, or a protocol error) is destroyed on release.
    let broken: Error | undefined;
    const noteBroken = (error: unknown): void => {
      if (isConnectionFailure(error)) broken = error as Error;
    };
    let begun = false;
    let committing = false;
    /** Set once tx.commit() committed: `work` returns, and no COMMIT follows. */
    let committed = false;
    const tx: Transaction = {
      rows: async <R>(text: string, values?: readonly unknown[]) => {
        try {
          const result = await client.query(text, values as unknown[] | undefined);
          return result.rows as R[];
        } catch (error) {
          noteBroken(error);
          throw error;
        }
      },
      pipeline: async (statements: readonly PipelineStatement[]) => {
        try {
          return await runPipeline(client, statements);
        } catch (error) {
          noteBroken(error);
          throw error;
        }
      },
      commit: async (statements: readonly PipelineStatement[]) => {
        if (guard?.signal.aborted) throw new LockLostError(guard.lockKey);
        try {
          const rows = await tx.pipeline([...statements, { text: "COMMIT" }]);
          committed = true;
          return rows.slice(0, statements.length);
        } catch (error) {
          // The COMMIT failed, or the connection did with the COMMIT on its way: nothing is known to be
          // committed, as when the COMMIT below fails. (A statement before it failed: the server
          // skipped the COMMIT, and the ROLLBACK below ends the transaction.)
          const at = failedStatementOf(error);
          if (at === statements.length || (at === null && sqlStateOf(error) === null)) committing = true;
          throw error;
        }
      },
    };
    const prelude = this.#prelude(guard);
    try {
      const results = await tx.pipeline([...prelude, ...opening]);
      begun = true;
      const result = await work(tx, results.slice(prelude.length));
      if (committed) return result;
      if (guard?.signal.aborted) throw new LockLostError(guard.lockKey);
      committing = true;
      await tx.rows("COMMIT");
      return result;
    } catch (error) {
      // Never leave a transaction open on a connection that goes back to the pool.
      if (!broken) await tx.rows("ROLLBACK").catch(noteBroken);
      const failedAt = begun ? null : failedStatementOf(error);
      const thrown =
        !begun && guard?.transactionLock && sqlStateOf(error) === "55P03"
          ? new LockBusyError(guard.lockKey, guard.transactionLock.waitMs)
          : toStoreError(error, "running a transaction");
      if (failedAt !== null && failedAt >= prelude.length && typeof thrown === "object" && thrown !== null) {
        openingFailures.set(thrown, failedAt - prelude.length);
      }
      if (committing && typeof thrown === "object" && thrown !== null) commitFailures.add(thrown);
      throw thrown;
    } finally {
      this.release(client, broken);
    }
  }

  /**
   * Read-only statements in one transaction and one round trip (BEGIN, statement timeout, the reads,
   * COMMIT): the reads see one instant. Returns the rows of each read.
   */
  async read<R extends unknown[]>(reads: readonly PipelineStatement[]): Promise<{ [K in keyof R]: R[K][] }> {
    const client = await this.connect();
    let broken: Error | undefined;
    const prelude: PipelineStatement[] = [
      { text: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" },
      {
        text: "SELECT set_config('statement_timeout', $1, true)",
        values: [String(Math.max(1, Math.trunc(this.#options.statementTimeoutMs)))],
      },
    ];
    try {
      const results = await runPipeline(client, [...prelude, ...reads, { text: "COMMIT" }]);
      return results.slice(prelude.length, prelude.length + reads.length) as { [K in keyof R]: R[K][] };
    } catch (error) {
      if (isConnectionFailure(error)) broken = error as Error;
      else
        await client.query("ROLLBACK").catch((failed: unknown) => {
          if (isConnectionFailure(failed)) broken = failed as Error;
        });
      throw toStoreError(error, "reading");
    } finally {
      this.release(client, broken);
    }
  }

  /**
   * BEGIN and the transaction's settings: `synchronous_commit = on` (a sale is on disk before the
   * answer), the statement timeout, and an idle-in-transaction timeout: a client that stops
   * mid-transaction (paused, partitioned) must not keep the event row and its advisory lock forever,
   * the server ends such a transaction on its own. With a transaction lock, the advisory lock within
   * its bounded wait.
   */
  #prelude(guard: WriteGuard | null): PipelineStatement[] {
    const statementTimeoutMs = Math.max(1, Math.trunc(this.#options.statementTimeoutMs));
    const statements: PipelineStatement[] = [
      { text: "BEGIN ISOLATION LEVEL READ COMMITTED" },
      {
        text: `SELECT set_config('synchronous_commit', 'on', true),
                      set_config('statement_timeout', $1, true),
                      set_config('idle_in_transaction_session_timeout', $2, true)`,
        values: [String(statementTimeoutMs), String(Math.max(1000, 2 * statementTimeoutMs))],
      },
    ];
    if (guard) statements.push(...transactionLockStatements(guard));
    return statements;
  }
}

/**
 * The guard's advisory transaction lock (WriteGuard.transactionLock), taken within its bounded wait:
 * three statements, or none for a guard without one. A lock that stays busy fails the second one with
 * SQLSTATE 55P03.
 */
export function transactionLockStatements(guard: WriteGuard): PipelineStatement[] {
  if (!guard.transactionLock) return [];
  const waitMs = Math.max(1, Math.trunc(guard.transactionLock.waitMs));
  return [
    { text: "SELECT set_config('lock_timeout', $1, true)", values: [String(waitMs)] },
    {
      text: "SELECT pg_advisory_xact_lock($1::bigint)",
      values: [advisoryKeyFor(guard.lockKey).toString()],
    },
    { text: "SET LOCAL lock_timeout TO DEFAULT" },
  ];
}

/** The query that was running has already failed with the same error; the client is released as broken. */
function ignoreClientError(): void {}

/**
 * Whether the connection is no longer fit for another transaction: an error without a SQLSTATE (the
 * socket failed, the client timed out, pg could not send) or a protocol violation (08P01), after which
 * client and server may disagree about where a message begins.
 */
function isConnectionFailure(error: unknown): boolean {
  const sqlState = sqlStateOf(error);
  return (sqlState === null || sqlState === "08P01") && error instanceof Error;
}
