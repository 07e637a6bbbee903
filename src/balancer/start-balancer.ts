/** Starts the balancer of the configured mode. */
import { balancerConfigWarnings, type BalancerConfig } from "../config/balancer-config.js";
import type { Logger } from "../log/logger.js";
import { LeastConnectionsBalancer } from "./least-connections-balancer.js";
import { TcpBalancer } from "./tcp-balancer.js";
import { startTracing } from "../telemetry/tracing.js";

/** A started balancer, whichever the mode. */
export interface RunningBalancer {
  readonly port: number;
  /** The port of `/_lb/` when it has one of its own (`--admin-port`). */
  readonly adminPort?: number | undefined;
  close(graceMs?: number): Promise<void>;
}

export async function startBalancer(config: BalancerConfig, log: Logger): Promise<RunningBalancer> {
  for (const warning of balancerConfigWarnings(config)) log.warn(warning);
  // Loaded only when asked for: off, nothing of OpenTelemetry is in the process.
  const tracing =
    config.otelEndpoint === undefined || config.mode === "tcp"
      ? undefined
      : await startTracing(config.otelEndpoint, "boxoffice-balancer");
  const balancer =
    config.mode === "tcp" ? new TcpBalancer(config, log) : new LeastConnectionsBalancer(config, log, tracing);
  await balancer.init();
  return balancer;
}
