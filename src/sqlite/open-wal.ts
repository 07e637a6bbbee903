/**
 * What boxoffice's SQLite files share whoever opens them: WAL mode, a busy timeout, and a retry while a
 * fresh file is switched to WAL. The SQLite store (its event and catalog files) and the file lock (its
 * lock file) both open files this way; it sits below `store/` and `lock/` so that neither imports the
 * other, and knows nothing of either.
 */
import Database from "better-sqlite3";

export type SqliteDatabase = Database.Database;

/** How long opening a file keeps retrying while another process holds it exclusively. */
export const OPEN_RETRY_MS = 5000;

/**
 * Opens (creating if needed) a SQLite file in WAL mode with a busy timeout, and runs `setup` on it.
 * Switching a new file to WAL needs a moment of exclusive access, and SQLite does not wait for it with
 * the busy handler: processes opening a fresh data directory together (the instances `boxoffice up`
 * starts at once, their store files and their lock file) retry here for up to OPEN_RETRY_MS instead of
 * failing. Throws SQLite's own error otherwise.
 */
export function openWal(
  path: string,
  options: {
    busyTimeoutMs: number;
    synchronous: "FULL" | "NORMAL";
    setup: (db: SqliteDatabase) => void;
    /** WAL pages after which a commit checkpoints (SQLite's default: 1,000). */
    autocheckpointPages?: number;
  },
): SqliteDatabase {
  const deadline = Date.now() + OPEN_RETRY_MS;
  for (let attempt = 0; ; attempt++) {
    let db: SqliteDatabase | undefined;
    try {
      db = new Database(path);
      db.pragma(`busy_timeout = ${options.busyTimeoutMs}`);
      db.pragma("journal_mode = WAL");
      db.pragma(`synchronous = ${options.synchronous}`);
      // Statement journals (a savepoint's undo, what a nested transaction writes before its changes)
      // in memory: SQLite spills one past 64 KiB to a temporary file otherwise, and a sell batch's
      // savepoints passed that, about 20 writes to /var/tmp per order. Nothing there needs to outlive
      // the transaction: a crash rolls it back from the WAL.
      db.pragma("temp_store = MEMORY");
      if (options.autocheckpointPages !== undefined)
        db.pragma(`wal_autocheckpoint = ${options.autocheckpointPages}`);
      options.setup(db);
      return db;
    } catch (error) {
      db?.close();
      const code = (error as { code?: unknown } | null)?.code;
      const busy = code === "SQLITE_BUSY" || code === "SQLITE_LOCKED";
      if (!busy || Date.now() > deadline) throw error;
      sleepSync(Math.min(100, 5 * 2 ** Math.min(attempt, 5)) * (0.5 + Math.random()));
    }
  }
}

/** Blocks the thread briefly: opening a database is synchronous, and so is waiting for it. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}
