#!/usr/bin/env node
/**
 * The `boxoffice` command. Each subcommand lives in its own file and registers itself on the program,
 * so that the balancer (`lb`) and the cluster (`up`) add theirs without touching this one.
 */
import { Command } from "commander";
import { BoxofficeError } from "../domain/errors.js";
import { registerLbCommand } from "./lb-command.js";
import { registerServerCommand } from "./server-command.js";
import { registerUpCommand } from "./up-command.js";

const program = new Command()
  .name("boxoffice")
  .description("Sell tickets through a surge, exactly once each.")
  .showHelpAfterError();

registerServerCommand(program);
registerLbCommand(program);
registerUpCommand(program);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  // Configuration mistakes get one clear line, not a stack trace.
  if (error instanceof BoxofficeError && error.code === "INVALID_CONFIG") {
    console.error(`boxoffice: ${error.message}`);
    process.exit(2);
  }
  throw error;
}
