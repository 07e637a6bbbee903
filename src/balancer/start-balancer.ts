/** Starts the balancer of the configured mode. */
import type { BalancerConfig } from "../config/balancer-config.js";
import { LeastConnectionsBalancer } from "./least-connections-balancer.js";
import { TcpBalancer } from "./tcp-balancer.js";

/** A started balancer, whichever the mode. */
export interface RunningBalancer {
  readonly port: number;
  close(graceMs?: number): Promise<void>;
}

export async function startBalancer(config: Readonly<BalancerConfig>): Promise<RunningBalancer> {
  const balancer = config.mode === "tcp" ? new TcpBalancer(config) : new LeastConnectionsBalancer(config);
  await balancer.init();
  return balancer;
}
