/**
 * `boxoffice migrate`: applies the configured store's pending migrations and returns what it did, without
 * opening the store for sales. Each backend's migration code loads with a dynamic import(), as in
 * create-store.ts.
 */
import type { StoreConfig } from "./create-store.js";
import type { MigrationReport } from "./store.js";

export async function migrateStore(config: StoreConfig): Promise<MigrationReport[]> {
  switch (config.kind) {
    case "sqlite": {
      const { migrateSqlite } = await import("./sqlite/sqlite-migrate.js");
      return migrateSqlite(config);
    }
    case "postgres": {
      const { migratePostgres } = await import("./postgres/postgres-migrations.js");
      return [await migratePostgres(config)];
    }
  }
}
