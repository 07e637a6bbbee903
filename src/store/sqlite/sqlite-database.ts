/**
 * Opening a SQLite file the way every boxoffice process must: WAL (readers never wait for the writer),
 * a busy timeout (several processes share the files), the chosen durability, and the versioned migrations
 * of its role applied under an IMMEDIATE transaction so that processes starting together apply them once.
 */
import Database from "better-sqlite3";
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { SqliteDatabase } from "../../sqlite/open-wal.js";
import { openWal } from "../../sqlite/open-wal.js";
import { SchemaBehindError, StoreUnavailableError } from "../store-errors.js";
import type { SqliteDurability } from "./sqlite-store-config.js";
import { immediate } from "../../sqlite/immediate.js";

/**
 * Which set of migrations a file gets: the catalog, the sales, the webhook deliveries, or all three
 * (single-file layout).
 */
export type SqliteRole = "catalog" | "event" | "webhooks";

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
  webhooks: loadMigrations("webhooks"),
};

/**
 * Opens (creating if needed) a database file and brings it to the latest schema for its roles
 * (`migrations: "apply"`), or, with "check", only makes sure that it is there already (SchemaBehindError
 * otherwise). The schema version is kept per role in a small table, because one file may carry both roles.
 */
export function openSqlite(
  path: string,
  roles: readonly SqliteRole[],
  durability: SqliteDurability,
  migrations: "apply" | "check" = "apply",
  autocheckpointPages?: number,
): SqliteDatabase {
  try {
    return openWal(path, {
      busyTimeoutMs: BUSY_TIMEOUT_MS,
      autocheckpointPages,
      // FULL: the WAL is fsynced at every commit, so a confirmed sale survives a power loss.
      synchronous: durability === "full" ? "FULL" : "NORMAL",
      setup: (db) => {
        if (migrations === "apply") migrate(db, roles);
        else checkVersions(db, roles, path);
      },
    });
  } catch (error) {
    if (error instanceof SchemaBehindError) throw error;
    throw mapSqliteError(error, `cannot open ${path}`);
  }
}

/**
 * `boxoffice migrate` for one file: opens it (creating it when missing), applies what is pending, closes
 * it. Returns the migrations it applied, as "role 002", and the file's version per role afterwards.
 */
export function migrateSqliteFile(
  path: string,
  roles: readonly SqliteRole[],
  durability: SqliteDurability,
): { applied: string[]; versions: Partial<Record<SqliteRole, number>> } {
  let applied: string[] = [];
  let db: SqliteDatabase;
  try {
    db = openWal(path, {
      busyTimeoutMs: BUSY_TIMEOUT_MS,
      synchronous: durability === "full" ? "FULL" : "NORMAL",
      setup: (opened) => {
        applied = migrate(opened, roles);
      },
    });
  } catch (error) {
    throw mapSqliteError(error, `cannot migrate ${path}`);
  }
  try {
    return { applied, versions: Object.fromEntries(appliedVersions(db, roles)) };
  } finally {
    db.close();
  }
}

function appliedVersions(db: SqliteDatabase, roles: readonly SqliteRole[]): Map<SqliteRole, number> {
  const hasTable = db
    .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_versions'")
    .get();
  const versions = new Map<SqliteRole, number>(roles.map((role) => [role, 0]));
  if (!hasTable) return versions;
  const current = db.prepare<[string], { version: number }>(
    "SELECT version FROM schema_versions WHERE role = ?",
  );
  for (const role of roles) versions.set(role, current.get(role)?.version ?? 0);
  return versions;
}

function checkVersions(db: SqliteDatabase, roles: readonly SqliteRole[], path: string): void {
  const found = appliedVersions(db, roles);
  for (const role of roles) {
    const needed = MIGRATIONS[role].at(-1)?.version ?? 0;
    const version = found.get(role) ?? 0;
    if (version < needed) throw new SchemaBehindError(`SQLite file ${path} (${role})`, version, needed);
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

/** Applies what is pending for the roles in one IMMEDIATE transaction; returns what it applied ("event 002"). */
function migrate(db: SqliteDatabase, roles: readonly SqliteRole[]): string[] {
  const done: string[] = [];
  immediate(db, () => {
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
        done.push(`${role} ${String(migration.version).padStart(3, "0")}`);
      }
    }
  });
  return done;
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
