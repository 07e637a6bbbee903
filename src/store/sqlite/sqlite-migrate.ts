/**
 * `boxoffice migrate` for the SQLite store: the catalog (or the single file) and every event file that
 * exists, each brought to the latest schema and closed. Instances started with `--migrate false` then
 * find every file current and change no schema themselves.
 */
import { mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import type { MigrationReport } from "../store.js";
import { migrateSqliteFile } from "./sqlite-database.js";
import type { SqliteStoreConfig } from "./sqlite-store-config.js";

export function migrateSqlite(config: SqliteStoreConfig): MigrationReport[] {
  mkdirSync(config.dir, { recursive: true });
  if (config.layout === "single") {
    const path = join(config.dir, "boxoffice.db");
    return [{ target: path, ...migrateSqliteFile(path, ["catalog", "event"], config.durability) }];
  }
  const catalog = join(config.dir, "catalog.db");
  const reports: MigrationReport[] = [
    { target: catalog, ...migrateSqliteFile(catalog, ["catalog"], config.durability) },
  ];
  const eventsDir = join(config.dir, "events");
  mkdirSync(eventsDir, { recursive: true });
  for (const name of readdirSync(eventsDir).sort()) {
    if (!name.endsWith(".db")) continue;
    const path = join(eventsDir, name);
    reports.push({ target: path, ...migrateSqliteFile(path, ["event"], config.durability) });
  }
  return reports;
}
