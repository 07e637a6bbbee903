/** Errors a store raises. All are retryable: nothing was committed. */
import { BoxofficeError } from "../domain/errors.js";

/** The database cannot be reached, timed out, or is too busy. */
export class StoreUnavailableError extends BoxofficeError {
  constructor(message: string, cause?: unknown) {
    super("STORE_UNAVAILABLE", message, { retryable: true, cause });
  }
}

/** The write carried a fencing token older than one the store has already applied for its lock key. */
export class FencedOutError extends BoxofficeError {
  constructor(lockKey: string, fence: number, highest: number) {
    super("STALE_FENCE", `fence ${fence} for "${lockKey}" is older than ${highest}: write refused`, {
      retryable: true,
    });
  }
}

/**
 * The database's schema is older than this build's migrations, and the store was told not to migrate
 * (`--migrate false`): `boxoffice migrate` must run first. Not retryable: waiting does not change it.
 */
export class SchemaBehindError extends BoxofficeError {
  constructor(
    readonly target: string,
    readonly foundVersion: number,
    readonly neededVersion: number,
  ) {
    super(
      "SCHEMA_BEHIND",
      `${target} is at schema version ${foundVersion}, this build needs ${neededVersion}: ` +
        `run "boxoffice migrate" with the same --store (as a role that may change the schema), then start again`,
      { retryable: false },
    );
  }
}
