/** `boxoffice server`: one instance of the HTTP API. */
import type { Command } from "commander";
import { SERVER_SETTINGS, loadServerConfig } from "../config/server-config.js";
import type { FlagValues } from "../config/settings.js";
import { startServer } from "../server/start-server.js";
import { runUntilSignal } from "./run-until-signal.js";

/** Adds every server setting as a `--flag <value>` option (env variable and default in the help). */
export function addServerOptions(command: Command): Command {
  for (const setting of Object.values(SERVER_SETTINGS)) {
    const shown = setting.defaultText === "" ? "" : `, default ${setting.defaultText}`;
    command.option(`--${setting.flag} <value>`, `${setting.description} (${setting.env}${shown})`);
  }
  return command;
}

export function registerServerCommand(program: Command): void {
  addServerOptions(program.command("server").description("start one server instance")).action(
    async (flags: FlagValues) => {
      const server = await startServer(loadServerConfig(flags));
      runUntilSignal(server, "boxoffice server");
    },
  );
}
