/**
 * Builds the configured store from a tagged config. Backends live in one folder each, with their config
 * types; PostgreSQL's client loads with a dynamic import() so the embedded default does not need it.
 */
import type { PostgresStoreConfig } from "./postgres/postgres-store-config.js";
import type { SqliteStoreConfig } from "./sqlite/sqlite-store-config.js";
import type { Store } from "./store.js";

export type StoreConfig = SqliteStoreConfig | ({ kind: "postgres" } & PostgresStoreConfig);

export async function createStore(config: StoreConfig): Promise<Store> {
  switch (config.kind) {
    case "sqlite": {
      const { SqliteStore } = await import("./sqlite/sqlite-store.js");
      return new SqliteStore(config);
    }
    case "postgres": {
      const { PostgresStore } = await import("./postgres/postgres-store.js");
      return new PostgresStore(config);
    }
  }
}
