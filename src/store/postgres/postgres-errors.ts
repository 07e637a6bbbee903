/**
 * Maps what the `pg` driver throws to the store's errors, by SQLSTATE code and by error class, never by
 * message text. Every error here is retryable: the transaction that raised it was rolled back.
 */
import pg from "pg";
import { BoxofficeError } from "../../domain/errors.js";
import { StoreUnavailableError } from "../store-errors.js";

/**
 * A write lost a race that a constraint or the database's own conflict detection caught (a unique or
 * check violation, a serialization failure, a deadlock). Nothing was committed; the same request can be
 * retried. With the event row locked first this should not happen; when it does, the constraint, not
 * luck, is what kept the inventory right.
 */
export class StoreConflictError extends BoxofficeError {
  readonly sqlState: string;
  constructor(sqlState: string, cause: unknown) {
    super("STORE_CONFLICT", `the database refused a conflicting write (SQLSTATE ${sqlState}); retry`, {
      retryable: true,
      cause,
    });
    this.sqlState = sqlState;
  }
}

/** SQLSTATEs that mean a constraint or the engine stopped a conflicting write. */
const CONFLICT_CODES = new Set([
  "23505", // unique_violation
  "23514", // check_violation
  "40001", // serialization_failure
  "40P01", // deadlock_detected
]);

/** SQLSTATE classes that mean the server cannot do the work now: retry later. */
const UNAVAILABLE_CLASSES = new Set([
  "08", // connection exception
  "53", // insufficient resources (too many connections, out of memory, disk full)
  "57", // operator intervention: query_canceled (57014, statement timeout), admin_shutdown, cannot_connect_now
  "58", // system error
]);

/**
 * SQLSTATEs with which the database refuses a statement for the data it was given rather than for the
 * state of the database or the server: class 22 (data exception: invalid text, JSON or number, a byte
 * the encoding lacks), class 54 (program limit exceeded: a value too large for an index row), a null
 * where none may be (23502), and a protocol violation (08P01: a message the server could not read).
 */
export function isCommandDataError(error: unknown): boolean {
  // toStoreError wraps 08P01 (class 08) in StoreUnavailableError: look at what it wraps.
  const sqlState = sqlStateOf(error) ?? (error instanceof BoxofficeError ? sqlStateOf(error.cause) : null);
  if (sqlState === null) return false;
  return (
    sqlState.startsWith("22") || sqlState.startsWith("54") || sqlState === "23502" || sqlState === "08P01"
  );
}

/**
 * The event whose rows closeBatch's guard refused (batch_guard, migration 006: check_violation with
 * the constraint 'batch_guard' and the event's id as the detail), or null for any other error.
 */
export function batchGuardEventOf(error: unknown): string | null {
  if (!(error instanceof pg.DatabaseError) || error.code !== "23514" || error.constraint !== "batch_guard") {
    return null;
  }
  return error.detail ?? null;
}

/** The SQLSTATE of a server error, or null when the error did not come from the server. */
export function sqlStateOf(error: unknown): string | null {
  return error instanceof pg.DatabaseError && typeof error.code === "string" ? error.code : null;
}

/**
 * The store error for something the driver threw. A server error with an unexpected SQLSTATE (a syntax
 * error, a missing table) is a bug and passes through unchanged. Anything the driver throws without a
 * SQLSTATE (refused or reset connection, a connection ended mid-query, the pool's wait for a connection
 * running out, the client-side query timeout) means the server cannot be reached: StoreUnavailableError.
 */
export function toStoreError(error: unknown, doing: string): unknown {
  if (error instanceof BoxofficeError) return error;
  const sqlState = sqlStateOf(error);
  if (sqlState === null)
    return new StoreUnavailableError(`PostgreSQL cannot be reached while ${doing}`, error);
  if (CONFLICT_CODES.has(sqlState)) return new StoreConflictError(sqlState, error);
  if (sqlState === "57014") {
    return new StoreUnavailableError(`PostgreSQL statement timed out while ${doing}`, error);
  }
  if (UNAVAILABLE_CLASSES.has(sqlState.slice(0, 2)) || sqlState === "55P03") {
    return new StoreUnavailableError(
      `PostgreSQL is unavailable (SQLSTATE ${sqlState}) while ${doing}`,
      error,
    );
  }
  return error;
}
