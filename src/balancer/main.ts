#!/usr/bin/env node
/**
 * Standalone entry of the balancer, the same as `boxoffice lb`: `node dist/src/balancer/main.js --port
 * 8080 --backend http://127.0.0.1:9101 --backend http://127.0.0.1:9102`.
 */
import { Command } from "commander";
import { registerLbCommand } from "../cli/lb-command.js";

const program = new Command().name("boxoffice-lb");
registerLbCommand(program);
try {
  await program.parseAsync(["lb", ...process.argv.slice(2)], { from: "user" });
} catch (error) {
  console.error(`balancer: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
}
