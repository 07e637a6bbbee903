/**
 * `boxoffice migrate`: the configured store's pending migrations, applied once by a separate step (a
 * Kubernetes Job, a compose one-shot service, a systemd oneshot) as a role that may change the schema,
 * so that the instances can start with `--migrate false` as a role that cannot.
 */
import type { ServerConfig } from "../config/server-config.js";
import { migrateStore } from "../store/migrate-store.js";
import type { MigrationReport } from "../store/store.js";
import { storeConfigOf } from "./start-server.js";

export async function migrateSchema(config: ServerConfig): Promise<MigrationReport[]> {
  return migrateStore(storeConfigOf({ ...config, migrate: true }));
}
