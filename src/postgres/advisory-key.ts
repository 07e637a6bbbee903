/**
 * What boxoffice's PostgreSQL code shares whoever runs it: the key of an advisory lock. The PostgreSQL
 * store takes its transaction locks and its migration lock with it, the PostgreSQL lock provider and the
 * tests name the same locks with it. It sits below `store/` and `lock/` so that neither imports the
 * other; it knows nothing of either.
 */
import { createHash } from "node:crypto";

/**
 * The 64-bit advisory lock key of a lock key: the first 8 bytes of SHA-256("boxoffice:" + lockKey), as
 * a signed bigint (pass it as a string parameter: `SELECT pg_advisory_xact_lock($1::bigint)`).
 *
 * Collisions: for n distinct keys the chance that any two share an advisory key is about n²/2⁶⁵ —
 * 3·10⁻⁸ for a million events. A collision would only make two events wait for each other (less
 * concurrency); it can never let a sale through that the database's own checks refuse. The
 * "boxoffice:" prefix keeps our keys apart from other applications' advisory locks on the same database.
 */
export function advisoryKeyFor(lockKey: string): bigint {
  return createHash("sha256").update(`boxoffice:${lockKey}`).digest().readBigInt64BE(0);
}
