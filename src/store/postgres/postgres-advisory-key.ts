/**
 * The 64-bit key of a PostgreSQL advisory lock for a lock key ("global", "event:<id>").
 *
 * Stand-in until src/lock/postgres/postgres-lock.ts (the locks part) lands on main and exports its own
 * `advisoryKeyFor`: then this file goes, and the store imports that one, so that the lock provider and the
 * store agree on the key.
 */
import { createHash } from "node:crypto";

/**
 * The first 8 bytes of SHA-256 of "boxoffice:<key>", as a signed 64-bit integer (what
 * pg_advisory_xact_lock takes); the same derivation as the locks branch's `advisoryKeyFor`.
 */
export function advisoryKeyFor(lockKey: string): bigint {
  return createHash("sha256").update(`boxoffice:${lockKey}`).digest().readBigInt64BE(0);
}
