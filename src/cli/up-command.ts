/**
 * `boxoffice up` (and `npm start`). Until the cluster supervisor exists this starts ONE server instance,
 * on port 8080 with the embedded default store, and says so; the cluster replaces this file.
 */
import type { Command } from "commander";
import { loadServerConfig } from "../config/server-config.js";
import type { FlagValues } from "../config/settings.js";
import { startServer } from "../server/start-server.js";
import { addServerOptions } from "./server-command.js";
import { runUntilSignal } from "./run-until-signal.js";

export function registerUpCommand(program: Command): void {
  addServerOptions(
    program.command("up").description("start the service (for now: one instance, no balancer)"),
  ).action(async (flags: FlagValues) => {
    const config = loadServerConfig(flags);
    console.log("boxoffice up: no cluster yet, starting ONE server instance (no load balancer)");
    const server = await startServer(config);
    console.log(`boxoffice up: serving on ${server.url}`);
    runUntilSignal(server, "boxoffice up");
  });
}
