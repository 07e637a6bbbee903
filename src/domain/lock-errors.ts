/**
 * The three ways a lock can fail, each with its own stable code (node-redlock folds them into one). They
 * live in domain/ beside WriteGuard because the stores raise them too (a lease lost before the commit, a
 * lock taken inside the store's own transaction that waited too long).
 */
import { BoxofficeError } from "./errors.js";

/** The lock was held by someone else for longer than the wait allowed. */
export class LockBusyError extends BoxofficeError {
  constructor(key: string, waitMs: number, cause?: unknown) {
    super("LOCK_BUSY", `lock "${key}" still busy after ${waitMs} ms`, { retryable: true, cause });
  }
}

/** The lock backend cannot be reached, or no quorum of lock servers answered. */
export class LockUnavailableError extends BoxofficeError {
  constructor(message: string, cause?: unknown) {
    super("LOCK_UNAVAILABLE", message, { retryable: true, cause });
  }
}

/** The lease ran out or was taken over while the work was running; the work was told to stop. */
export class LockLostError extends BoxofficeError {
  constructor(key: string, cause?: unknown) {
    super("LOCK_LOST", `lease on lock "${key}" was lost during the work`, { retryable: true, cause });
  }
}
