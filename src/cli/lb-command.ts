/**
 * `boxoffice lb --backend URL ...`: starts a load balancer alone. Its options are the table in
 * config/balancer-config.ts; every one is also an environment variable, and flags win.
 */
import type { Command } from "commander";
import { BALANCER_SETTINGS, loadBalancerConfig } from "../config/balancer-config.js";
import type { FlagValues } from "../config/settings.js";
import { createLogger } from "../log/logger.js";
import { runUntilSignal } from "./run-until-signal.js";
import { addSettingOptions } from "./setting-options.js";

export function registerLbCommand(program: Command): Command {
  const command = addSettingOptions(
    program
      .command("lb")
      .description("start the least-connections load balancer alone, in front of running instances"),
    BALANCER_SETTINGS,
  );
  command.action(async (flags: FlagValues) => {
    const config = loadBalancerConfig(flags);
    // The balancer's own events (an instance down or up, DNS changes, a failed admin call), never a line
    // per request: that is the access log's (--access-log).
    const log = createLogger(config.logLevel, { component: "balancer" });
    // Loaded here, not at the top, so that the other commands do not load the balancer.
    const { startBalancer } = await import("../balancer/start-balancer.js");
    const balancer = await startBalancer(config, log);
    log.info(
      `balancer (${config.mode}) listening on http://${config.host}:${balancer.port} over ` +
        `${config.backends.length} instance(s)` +
        (config.backendsDns ? ` and those of ${config.backendsDns.name} (DNS)` : "") +
        (balancer.adminPort === undefined
          ? ""
          : `; /_lb/ on http://${config.adminHost}:${balancer.adminPort} only`),
    );
    if (config.adminToken === undefined && config.mode === "http")
      log.warn("no admin token (BOXOFFICE_ADMIN_TOKEN): /_lb/backends answers 401");
    // Stops on SIGTERM, Ctrl-C, or when a supervisor that started it goes away.
    runUntilSignal(balancer, log);
  });
  return command;
}
