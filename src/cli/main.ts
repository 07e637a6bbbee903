#!/usr/bin/env node
/**
 * The `boxoffice` command. Each subcommand lives in its own file and registers itself on the program,
 * so that the balancer (`lb`) and the cluster (`up`) add theirs without touching this one. It is the one
 * entry point of every boxoffice process (the supervisor of `up` starts `boxoffice server` and
 * `boxoffice lb` through it); nothing in src/ imports cli/.
 */
import { Command } from "commander";
import { ConfigError } from "../domain/errors.js";
import { registerLbCommand } from "./lb-command.js";
import { registerRehearseCommand } from "./rehearse-command.js";
import { registerMigrateCommand } from "./migrate-command.js";
import { registerServerCommand } from "./server-command.js";
import { registerUpCommand } from "./up-command.js";

const program = new Command()
  .name("boxoffice")
  .description("Sell tickets through a surge, exactly once each.")
  .showHelpAfterError();

registerServerCommand(program);
registerLbCommand(program);
registerUpCommand(program);
registerRehearseCommand(program);
registerMigrateCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Configuration mistakes get one clear line, not a stack trace: plain text for the person who typed
  // the command (the CLI's own output), not a log line.
  if (error instanceof ConfigError) {
    console.error(`boxoffice: ${error.message}`);
    process.exit(2);
  }
  throw error;
}
