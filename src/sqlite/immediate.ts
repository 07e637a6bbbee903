/**
 * One IMMEDIATE transaction on a connection, or a savepoint when one is already open, as better-sqlite3's
 * `db.transaction(fn).immediate()` runs it, without building that wrapper on every call.
 *
 * `db.transaction(fn)` makes four wrapper functions and defines five properties on each of them. The
 * sell path made one per batch, so a file per event made one per event per tick (and the file lock one
 * per lock taken): 71,000 of the 826,000 instructions a sale cost over 50 events in that layout
 * (callgrind, bench/sell-batch.ts). Here each connection gets its wrapper once, on first use, and the
 * wrapper runs the work it is handed; what it does around the work is better-sqlite3's own.
 */
import type Database from "better-sqlite3";
import type { SqliteDatabase } from "./open-wal.js";

type Runner = Database.Transaction<(work: () => unknown) => unknown>;

const runners = new WeakMap<SqliteDatabase, Runner>();

/**
 * Runs `work` in an IMMEDIATE transaction of `db` (the write lock taken at BEGIN), committed when it
 * returns and rolled back when it throws; inside an open transaction, in a savepoint that only its own
 * throw rolls back. `work` must not return a promise.
 */
export function immediate<T>(db: SqliteDatabase, work: () => T): T {
  let runner = runners.get(db);
  if (runner === undefined) {
    runner = db.transaction((run: () => unknown) => run());
    runners.set(db, runner);
  }
  return runner.immediate(work) as T;
}
