/**
 * Versioned migrations: `migrations/NNN-name.sql`, applied in order, each once, recorded in the schema's
 * `schema_migrations` table. All pending files run in one transaction under a transaction-scoped advisory
 * lock, so that many instances starting at once apply them exactly once, and so that it works through
 * PgBouncer in transaction mode (no session lock, no session SET).
 */
import { readdirSync, readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { advisoryKeyFor } from "../../postgres/advisory-key.js";
import { SchemaBehindError } from "../store-errors.js";
import type { MigrationReport } from "../store.js";
import type { PostgresStoreConfig } from "./postgres-store-config.js";
import { postgresTarget } from "./postgres-store-config.js";

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

const MIGRATIONS_DIR = fileURLToPath(new URL("./migrations/", import.meta.url));
const FILE_NAME = /^(\d{3})-([a-z0-9-]+)\.sql$/;

/** The migration files shipped with the store, in version order. */
export function loadMigrations(dir: string = MIGRATIONS_DIR): Migration[] {
  const migrations: Migration[] = [];
  for (const file of readdirSync(dir)) {
    const match = FILE_NAME.exec(file);
    if (!match?.[1] || !match[2]) continue;
    migrations.push({
      version: Number(match[1]),
      name: match[2],
      sql: readFileSync(`${dir}/${file}`, "utf8"),
    });
  }
  migrations.sort((a, b) => a.version - b.version);
  migrations.forEach((migration, index) => {
    if (migration.version !== index + 1) {
      throw new Error(`migration versions must run 1, 2, 3…: found ${migration.version} at ${index + 1}`);
    }
  });
  return migrations;
}

/**
 * Creates `schema` when missing and applies the migrations it has not seen yet. `quotedSchema` is the
 * schema name already quoted as an identifier. Returns the versions it applied.
 */
export async function migrate(
  client: pg.ClientBase,
  schema: string,
  quotedSchema: string,
  migrations: readonly Migration[] = loadMigrations(),
): Promise<number[]> {
  const applied: number[] = [];
  await client.query("BEGIN");
  try {
    await client.query("SELECT pg_advisory_xact_lock($1)", [
      advisoryKeyFor(`boxoffice-migrations:${schema}`).toString(),
    ]);
    await client.query(
      `CREATE SCHEMA IF NOT EXISTS ${quotedSchema};
       SET LOCAL search_path TO ${quotedSchema};
       CREATE TABLE IF NOT EXISTS schema_migrations (
         version    integer PRIMARY KEY,
         name       text NOT NULL,
         applied_at timestamptz NOT NULL DEFAULT now()
       )`,
    );
    const { rows } = await client.query<{ version: number }>("SELECT version FROM schema_migrations");
    const done = new Set(rows.map((row) => row.version));
    for (const migration of migrations) {
      if (done.has(migration.version)) continue;
      await client.query(migration.sql);
      await client.query("INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", [
        migration.version,
        migration.name,
      ]);
      applied.push(migration.version);
    }
    await client.query("COMMIT");
    return applied;
  } catch (error) {
    await client.query("ROLLBACK").catch(() => undefined);
    throw error;
  }
}

/** The newest version among the schema's applied migrations; 0 when it has none (or no schema at all). */
export async function schemaVersion(client: pg.ClientBase, schema: string): Promise<number> {
  const table = `${pg.escapeIdentifier(schema)}.schema_migrations`;
  const { rows: found } = await client.query<{ exists: boolean }>(
    "SELECT to_regclass($1) IS NOT NULL AS exists",
    [table],
  );
  if (!found[0]?.exists) return 0;
  const { rows } = await client.query<{ version: number | null }>(
    `SELECT max(version) AS version FROM ${table}`,
  );
  return rows[0]?.version ?? 0;
}

/**
 * For instances that do not migrate: throws SchemaBehindError when the schema lacks a migration this build
 * has. A schema ahead of the build (a newer build migrated it during a rolling update) is accepted: every
 * migration must keep the previous build working.
 */
export async function checkSchemaVersion(
  client: pg.ClientBase,
  schema: string,
  migrations: readonly Migration[] = loadMigrations(),
): Promise<void> {
  const needed = migrations.at(-1)?.version ?? 0;
  const found = await schemaVersion(client, schema);
  if (found < needed) throw new SchemaBehindError(`PostgreSQL schema "${schema}"`, found, needed);
}

/**
 * `boxoffice migrate` for PostgreSQL: one connection (no pool), the pending migrations applied, closed.
 * Returns the migrations it applied and the version the schema is at now.
 */
export async function migratePostgres(
  config: Pick<PostgresStoreConfig, "url" | "schema">,
): Promise<MigrationReport> {
  const { connectionString, schema } = postgresTarget(config);
  const client = new pg.Client({ connectionString });
  await client.connect();
  try {
    const applied = await migrate(client, schema, pg.escapeIdentifier(schema));
    return {
      target: `PostgreSQL schema "${schema}"`,
      applied: applied.map((version) => `schema ${String(version).padStart(3, "0")}`),
      versions: { schema: await schemaVersion(client, schema) },
    };
  } finally {
    await client.end();
  }
}
