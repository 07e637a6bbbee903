/**
 * `boxoffice migrate`: applies the store's pending migrations (SQLite files or a PostgreSQL schema) and
 * exits, printing one line per file or schema. The instances then start with `--migrate false`.
 */
import type { Command } from "commander";
import { MIGRATE_SETTINGS, loadServerConfig } from "../config/server-config.js";
import { redactPostgresUrl } from "../config/store-url.js";
import type { FlagValues } from "../config/settings.js";
import { createLogger } from "../log/logger.js";
import { addSettingOptions } from "./setting-options.js";

export function registerMigrateCommand(program: Command): void {
  addSettingOptions(
    program
      .command("migrate")
      .description(
        "apply the store's pending schema migrations, then exit (run it before starting instances)",
      ),
    MIGRATE_SETTINGS,
  ).action(async (flags: FlagValues) => {
    const config = loadServerConfig(flags);
    const log = createLogger(config.logLevel, { command: "migrate" });
    const store = config.store === "sqlite" ? `sqlite:${config.dataDir}` : redactPostgresUrl(config.store);
    // Loaded here, not at the top, so that the other commands do not load the store.
    const { migrateSchema } = await import("../server/migrate-schema.js");
    try {
      const reports = await migrateSchema(config);
      for (const report of reports) {
        const versions = Object.entries(report.versions)
          .map(([part, version]) => `${part} ${version}`)
          .join(", ");
        log.info(
          { target: report.target, applied: report.applied, versions: report.versions },
          report.applied.length === 0
            ? `${report.target}: up to date (${versions})`
            : `${report.target}: applied ${report.applied.join(", ")} (now ${versions})`,
        );
      }
      log.info({ store, targets: reports.length }, "migrations done");
    } catch (error) {
      log.fatal({ err: error, store }, "migrations failed; nothing after the failing one was applied");
      process.exitCode = 1;
    }
  });
}
