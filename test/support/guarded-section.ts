/**
 * Runs a critical section the way a store runs its write under a WriteGuard: checks the signal before
 * "committing", and when the provider locks inside the store's transaction (postgres), opens a
 * transaction that takes the advisory lock first — exactly the store's protocol, without a store.
 */
import pg from "pg";
import { LockLostError } from "../../src/domain/lock-errors.js";
import { lockErrorFromPostgres } from "../../src/lock/postgres/postgres-lock.js";
import { advisoryKeyFor } from "../../src/postgres/advisory-key.js";
import type { WriteGuard } from "../../src/domain/write-guard.js";

export async function guardedSection<T>(
  guard: WriteGuard,
  postgresUrl: string | null,
  section: () => Promise<T>,
): Promise<T> {
  if (guard.transactionLock === undefined) {
    const result = await section();
    if (guard.signal.aborted) throw new LockLostError(guard.lockKey);
    return result;
  }
  if (postgresUrl === null) throw new Error("a transaction lock needs a PostgreSQL URL");
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    await client.query("BEGIN");
    try {
      await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(guard.transactionLock.waitMs))}`);
      await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [
        advisoryKeyFor(guard.lockKey).toString(),
      ]);
    } catch (error) {
      throw lockErrorFromPostgres(error, guard.lockKey, guard.transactionLock.waitMs) ?? error;
    }
    const result = await section();
    await client.query("COMMIT");
    return result;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    await client.end();
  }
}

/**
 * What withLocks' work does with its guards, the way a multi-event store commit does: runs `section`
 * and checks each granted key's signal before "committing" it (a key whose lease was lost is left out
 * of `committed`). When the guards lock inside the store's transaction (postgres), one transaction
 * takes every key's advisory lock in key order first; a key still busy after the wait makes the whole
 * section fail with LockBusyError (the store would rerun the others; a test needs no more).
 */
export async function guardedSections<T>(
  guards: ReadonlyMap<string, WriteGuard>,
  postgresUrl: string | null,
  section: () => Promise<T>,
): Promise<{ result: T; committed: string[] }> {
  const keys = [...guards.keys()].sort();
  const locked = keys.filter((key) => guards.get(key)?.transactionLock !== undefined);
  if (locked.length === 0) {
    const result = await section();
    return { result, committed: keys.filter((key) => !guards.get(key)?.signal.aborted) };
  }
  if (postgresUrl === null) throw new Error("a transaction lock needs a PostgreSQL URL");
  const client = new pg.Client({ connectionString: postgresUrl });
  await client.connect();
  try {
    await client.query("BEGIN");
    for (const key of locked) {
      const waitMs = guards.get(key)!.transactionLock!.waitMs;
      try {
        await client.query(`SET LOCAL lock_timeout = ${Math.max(1, Math.round(waitMs))}`);
        await client.query("SELECT pg_advisory_xact_lock($1::bigint)", [advisoryKeyFor(key).toString()]);
      } catch (error) {
        throw lockErrorFromPostgres(error, key, waitMs) ?? error;
      }
    }
    const result = await section();
    await client.query("COMMIT");
    return { result, committed: keys };
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  } finally {
    await client.end();
  }
}
