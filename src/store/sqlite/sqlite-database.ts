/**
 * Opening a SQLite file the way every boxoffice process must: WAL (readers never wait for the writer),
 * a busy timeout (several processes share the files), the chosen durability, and the versioned migrations
 * of its role applied under an IMMEDIATE transaction so that processes starting together apply them once.
 */
import Database from "better-sqlite3";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { SqliteDurability } from "../create-store.js";
import { StoreUnavailableError } from "../store-errors.js";

export type SqliteDatabase = Database.Database;

/** Which set of migrations a file gets: the catalog, the sales, or both (single-file layout). */
export type SqliteRole = "catalog" | "event";

/** How long a statement waits for another process's write lock before the request gets a 503. */
export const BUSY_TIMEOUT_MS = 5000;

const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));

interface Migration {
  role: SqliteRole;
  version: number;
  sql: string;
}

function loadMigrations(role: SqliteRole): Migration[] {
  const dir = `${MIGRATIONS_DIR}${role}`;
  return readdirSync(dir)
    .filter((name) => /^\d{3}-.+\.sql$/.test(name))
    .sort()
    .map((name) => ({
      role,
      version: Number(name.slice(0, 3)),
      sql: readFileSync(`${dir}/${name}`, "utf8"),
    }));
}

const MIGRATIONS: Record<SqliteRole, Migration[]> = {
  catalog: loadMigrations("catalog"),
  event: loadMigrations("event"),
};

/**
 * Opens (creating if needed) a database file and brings it to the latest schema for its roles.
 * The schema version is kept per role in a small table, because one file may carry both roles.
 */
export function openSqlite(
  path: string,
  roles: readonly SqliteRole[],
  durability: SqliteDurability,
): SqliteDatabase {
  try {
    return openWal(path, {
      busyTimeoutMs: BUSY_TIMEOUT_MS,
      // FULL: the WAL is fsynced at every commit, so a confirmed sale survives a power loss.
      synchronous: durability === "full" ? "FULL" : "NORMAL",
      setup: (db) => migrate(db, roles),
    });
  } catch (error) {
    throw mapSqliteError(error, `cannot open ${path}`);
  }
}

/**
 * Opens (creating if needed) a SQLite file in WAL mode with a busy timeout, and runs `setup` on it.
 * Switching a new file to WAL needs a moment of exclusive access, and SQLite does not wait for it with
 * the busy handler: processes opening a fresh data directory together (the instances `boxoffice up`
 * starts at once, their store files and their lock file) retry here for up to BUSY_TIMEOUT_MS instead of
 * failing. Throws SQLite's own error otherwise.
 */
export function openWal(
  path: string,
  options: { busyTimeoutMs: number; synchronous: "FULL" | "NORMAL"; setup: (db: SqliteDatabase) => void },
): SqliteDatabase {
  const deadline = Date.now() + BUSY_TIMEOUT_MS;
  for (let attempt = 0; ; attempt++) {
    let db: SqliteDatabase | undefined;
    try {
      db = new Database(path);
      db.pragma(`busy_timeout = ${options.busyTimeoutMs}`);
      db.pragma("journal_mode = WAL");
      db.pragma(`synchronous = ${options.synchronous}`);
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

/**
 * Opens an existing file without touching its schema or taking its write lock, for a short look that
 * must not cost what openSqlite costs (its migration check is an IMMEDIATE transaction). The file keeps
 * the WAL mode it was created with. Throws SQLite's own error.
 */
export function openExisting(path: string, busyTimeoutMs: number): SqliteDatabase {
  const db = new Database(path, { fileMustExist: true });
  try {
    db.pragma(`busy_timeout = ${busyTimeoutMs}`);
    return db;
  } catch (error) {
    db.close();
    throw error;
  }
}

/** Blocks the thread briefly: opening a database is synchronous, and so is waiting for it. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function migrate(db: SqliteDatabase, roles: readonly SqliteRole[]): void {
  const apply = db.transaction(() => {
    db.exec(
      "CREATE TABLE IF NOT EXISTS schema_versions (role TEXT PRIMARY KEY, version INTEGER NOT NULL) STRICT",
    );
    const current = db.prepare<[string], { version: number }>(
      "SELECT version FROM schema_versions WHERE role = ?",
    );
    for (const role of roles) {
      const applied = current.get(role)?.version ?? 0;
      for (const migration of MIGRATIONS[role]) {
        if (migration.version <= applied) continue;
        db.exec(migration.sql);
        db.prepare(
          "INSERT INTO schema_versions (role, version) VALUES (?, ?) ON CONFLICT (role) DO UPDATE SET version = excluded.version",
        ).run(role, migration.version);
      }
    }
  });
  apply.immediate();
}

/** SQLite result codes that mean "the store cannot serve this now", as opposed to a bug or a rule. */
const UNAVAILABLE_CODES = /^SQLITE_(BUSY|LOCKED|IOERR|FULL|CANTOPEN|PROTOCOL|READONLY|NOMEM|INTERRUPT)/;

/** Maps a driver error to StoreUnavailableError by its code; anything else passes through unchanged. */
export function mapSqliteError(error: unknown, context: string): unknown {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string" && UNAVAILABLE_CODES.test(code)) {
    return new StoreUnavailableError(`${context}: ${code}`, error);
  }
  return error;
}

/** True for the constraint errors a guarded write can still hit (a seat claimed, a key taken). */
export function isConstraintError(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === "string" && code.startsWith("SQLITE_CONSTRAINT");
}
