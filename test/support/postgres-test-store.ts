/**
 * A PostgresStore in a schema of its own (dropped by `cleanup`), so that every test, and every run of a
 * test, starts from an empty database on the shared server.
 */
import { randomBytes } from "node:crypto";
import pg from "pg";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import type { PostgresStoreConfig } from "../../src/store/postgres/postgres-store-config.js";
import { TEST_POSTGRES_URL } from "./services.js";

export interface TestPostgresStore {
  store: PostgresStore;
  schema: string;
  url: string;
  cleanup(): Promise<void>;
}

/** A fresh schema name: test_<what>_<random>. */
export function freshSchemaName(what: string): string {
  return `test_${what.replace(/[^a-z0-9]/gi, "_").toLowerCase()}_${randomBytes(4).toString("hex")}`;
}

/** Drops a schema the tests made, through a direct connection to `url`'s server. */
export async function dropSchema(url: string, schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

export async function createTestPostgresStore(
  what: string,
  config: Partial<PostgresStoreConfig> = {},
): Promise<TestPostgresStore> {
  const schema = config.schema ?? freshSchemaName(what);
  const url = config.url ?? TEST_POSTGRES_URL;
  const store = new PostgresStore({ url, poolSize: 4, statementTimeoutMs: 5000, ...config, schema });
  await store.init();
  return {
    store,
    schema,
    url,
    async cleanup() {
      await store.close();
      await dropSchema(TEST_POSTGRES_URL, schema);
    },
  };
}

/** Holds an event's row lock from a connection of its own (as a stuck writer would) until `release()`. */
export async function lockEventRow(
  url: string,
  schema: string,
  eventId: string,
): Promise<{ release(): Promise<void> }> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  await client.query("BEGIN");
  await client.query(`SELECT 1 FROM ${pg.escapeIdentifier(schema)}.events WHERE id = $1 FOR UPDATE`, [
    eventId,
  ]);
  return {
    async release() {
      await client.query("ROLLBACK").catch(() => undefined);
      await client.end();
    },
  };
}
