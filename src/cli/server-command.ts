/** `boxoffice server`: one instance of the HTTP API. */
import type { Command } from "commander";
import { resolveAdminToken } from "../config/admin-token.js";
import { SERVER_SETTINGS, loadServerConfig } from "../config/server-config.js";
import { resolveSigningSecret } from "../config/signing-secret.js";
import type { FlagValues } from "../config/settings.js";
import { BoxofficeError } from "../domain/errors.js";
import { createLogger } from "../log/logger.js";
import { runUntilSignal } from "./run-until-signal.js";
import { addSettingOptions } from "./setting-options.js";

export function registerServerCommand(program: Command): void {
  addSettingOptions(
    program.command("server").description("start one server instance"),
    SERVER_SETTINGS,
  ).action(async (flags: FlagValues) => {
    const config = loadServerConfig(flags);
    const log = createLogger(config.logLevel, { instance: config.instanceId });
    const admin = await resolveAdminToken(config.adminToken, config.dataDir);
    if (admin.generated) {
      // Plain output for whoever started the instance, printed once, not a log line: a token does not
      // belong in logs that are shipped elsewhere. It is in the file too.
      console.log(`boxoffice admin token (stored in ${config.dataDir}/admin-token): ${admin.token}`);
    }
    // Loaded here, not at the top, so that the other commands (`lb`, `status`) do not load the server.
    const { startServer } = await import("../server/start-server.js");
    let server;
    try {
      const signingSecret = await resolveSigningSecret(config.signingSecret, config.dataDir);
      server = await startServer(config, { adminToken: admin.token, signingSecret }, log);
    } catch (error) {
      // With --migrate false, a schema behind this build is the operator's next step, not a crash.
      if (error instanceof BoxofficeError && error.code === "SCHEMA_BEHIND") {
        log.fatal({ code: error.code }, error.message);
        process.exit(3);
      }
      throw error;
    }
    runUntilSignal(server, log);
  });
}
