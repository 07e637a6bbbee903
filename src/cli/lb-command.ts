/**
 * `boxoffice lb --backend URL ...`: starts a load balancer alone. Every option is also an environment
 * variable (see src/config/balancer-config.ts); flags win.
 */
import type { Command } from "commander";
import {
  BALANCER_DEFAULTS,
  envNameOf,
  loadBalancerConfig,
  type BalancerFlags,
} from "../config/balancer-config.js";
import { startBalancer } from "../balancer/start-balancer.js";
import { runUntilSignal } from "./run-until-signal.js";

const kebab = (name: string): string => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

// The numeric options and what they mean, in the order `--help` lists them.
const NUMERIC_FLAGS: [keyof typeof BALANCER_DEFAULTS, string][] = [
  ["healthIntervalMs", "time between two health checks of an instance"],
  ["healthTimeoutMs", "a health check not answered in this time failed"],
  ["riseCount", "passed checks in a row that bring an instance back"],
  ["fallCount", "failed checks in a row that take an instance down"],
  ["passiveFailureCount", "failed requests in a row (500/502/504, broken connection) that eject an instance"],
  ["slowStartMs", "an instance added or back from down ramps from 10% to full weight over this time"],
  ["maxActivePerBackend", "most requests one instance is given at once"],
  ["maxQueue", "most requests waiting for an instance with room; past it, 503 at once"],
  ["queueTimeoutMs", "longest wait in the queue before 503"],
  ["retryAfterSeconds", "Retry-After on the balancer's own 503s"],
  ["maxRetries", "most times one request is sent again"],
  ["retryBudgetRatio", "retries of requests that reached an instance, as a share of all requests"],
  ["retryBudgetMinPerSecond", "retries always allowed per second"],
  ["upstreamKeepAliveMs", "idle time before a pooled connection to an instance is closed"],
  ["connectTimeoutMs", "time to connect to an instance"],
  ["upstreamHeadersTimeoutMs", "time for an instance to send its response headers"],
  ["upstreamBodyTimeoutMs", "longest silence inside a response body (server-sent events too)"],
  ["maxHeaderBytes", "largest request head a client may send (431 past it)"],
  ["headersTimeoutMs", "time for a client to send its request head (408 past it)"],
  ["requestTimeoutMs", "time for a client to send its whole request (408 past it)"],
  ["clientKeepAliveMs", "idle time before a client's keep-alive connection is closed"],
  ["clientSendTimeoutMs", "a client that takes none of its response for this long is disconnected"],
  ["maxBufferedBodyBytes", "request bodies up to this size are held for retries; larger ones stream"],
  ["sseMaxAgeMs", "server-sent-events responses end after this time so clients rebalance"],
  ["maxClientConnections", "most client connections at once"],
  ["listenBacklog", "connections the kernel holds ready to accept (capped by net.core.somaxconn)"],
];

export function registerLbCommand(program: Command): Command {
  const command = program
    .command("lb")
    .description("start the least-connections load balancer alone, in front of running instances")
    .option("--port <port>", `port to listen on (BOXOFFICE_PORT, default ${BALANCER_DEFAULTS.port})`)
    .option("--host <host>", `address to listen on (BOXOFFICE_HOST, default ${BALANCER_DEFAULTS.host})`)
    .option(
      "--backend <url...>",
      "an instance, http://host:port, optionally #weight=N; repeatable (BOXOFFICE_BACKENDS, comma-separated)",
    )
    .option("--admin-token <token>", "bearer token for the /_lb/ admin calls (BOXOFFICE_ADMIN_TOKEN)")
    .option("--mode <mode>", `http (per request) or tcp (L4, pipes connections) (${envNameOf("mode")})`)
    .option(
      "--upstream-client <client>",
      `raw (the balancer's own minimal HTTP/1.1 client) or undici (undici's Pool) (${envNameOf("upstreamClient")}, default raw)`,
    )
    .option(
      "--front <server>",
      `raw (the balancer's own minimal HTTP/1.1 server side) or node (Node's http server) (${envNameOf("front")}, default raw)`,
    )
    .option("--health-path <path>", `health check path (${envNameOf("healthPath")}, default /ready)`);
  for (const [name, help] of NUMERIC_FLAGS) {
    command.option(
      `--${kebab(name)} <n>`,
      `${help} (${envNameOf(name)}, default ${BALANCER_DEFAULTS[name]})`,
    );
  }
  command.action(async (options: Record<string, string | string[] | undefined>) => {
    const flags: BalancerFlags = { ...options, backends: options.backend };
    delete (flags as Record<string, unknown>).backend;
    const config = loadBalancerConfig(flags);
    const balancer = await startBalancer(config);
    console.log(
      `balancer (${config.mode}) listening on http://${config.host}:${balancer.port} over ` +
        `${config.backends.length} instance(s)`,
    );
    if (config.adminToken === undefined && config.mode === "http")
      console.warn(
        "balancer: no admin token (BOXOFFICE_ADMIN_TOKEN or --admin-token): /_lb/backends answers 401",
      );
    // Stops on SIGTERM, Ctrl-C, or when a supervisor that started it goes away.
    runUntilSignal(balancer, "boxoffice lb");
  });
  return command;
}
