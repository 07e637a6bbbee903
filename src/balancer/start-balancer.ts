/** Starts the balancer of the configured mode and stops it on SIGTERM / Ctrl-C. */
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

/** Runs a balancer until SIGTERM or SIGINT, then closes it and lets the process exit. */
export async function runBalancerUntilSignal(config: Readonly<BalancerConfig>): Promise<void> {
  const balancer = await startBalancer(config);
  console.log(
    `balancer (${config.mode}) listening on http://${config.host}:${balancer.port} over ` +
      `${config.backends.length} instance(s)`,
  );
  if (config.adminToken === undefined && config.mode === "http")
    console.warn(
      "balancer: no admin token (BOXOFFICE_ADMIN_TOKEN or --admin-token): /_lb/backends answers 401",
    );
  await new Promise<void>((resolve) => {
    const stop = () => {
      process.off("SIGTERM", stop);
      process.off("SIGINT", stop);
      resolve();
    };
    process.on("SIGTERM", stop);
    process.on("SIGINT", stop);
  });
  await balancer.close();
}
