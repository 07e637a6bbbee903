/**
 * The settings of `boxoffice up` beyond those of one server: how many instances, where the balancer
 * listens, and the autoscaling policy. Flags win over BOXOFFICE_* variables, which win over defaults.
 */
import { ConfigError } from "../domain/errors.js";
import { LOG_LEVELS, type LogLevel } from "../log/logger.js";
import type { FlagValues, Setting } from "./settings.js";
import { listenPort, oneOf, readSetting, text, wholeNumber } from "./settings.js";

/** The supervisor's metrics (and `boxoffice status`'s control calls) are here unless told otherwise. */
export const DEFAULT_METRICS_PORT = 9180;

/**
 * When the supervisor adds or removes an instance (cluster/autoscaler.ts applies it). It is declared
 * here, with the settings it comes from, so that config needs nothing from the layers above it.
 */
export interface AutoscalePolicy {
  minInstances: number;
  maxInstances: number;
  /** In-flight requests per instance the cluster aims for. */
  targetInFlight: number;
  /** Fraction of the target below which the cluster is considered idle (0..1). */
  lowWatermark: number;
  /** How long the load must stay high (or low) before acting. */
  windowMs: number;
  /** Quiet time after a scaling action. */
  upCooldownMs: number;
  downCooldownMs: number;
}

export const CLUSTER_SETTINGS = {
  instances: {
    flag: "instances",
    env: "BOXOFFICE_INSTANCES",
    description: "instances to start (with --min/--max: the starting count)",
    defaultText: "3",
    parse: wholeNumber(1, 256),
  },
  min: {
    flag: "min",
    env: "BOXOFFICE_MIN_INSTANCES",
    description: "autoscaling: fewest instances (0 = no autoscaling)",
    defaultText: "0",
    parse: wholeNumber(0, 256),
  },
  max: {
    flag: "max",
    env: "BOXOFFICE_MAX_INSTANCES",
    description: "autoscaling: most instances (0 = no autoscaling)",
    defaultText: "0",
    parse: wholeNumber(0, 256),
  },
  targetInFlight: {
    flag: "target-in-flight",
    env: "BOXOFFICE_TARGET_IN_FLIGHT",
    description: "autoscaling: in-flight requests per instance to aim for",
    defaultText: "32",
    parse: wholeNumber(1, 100_000),
  },
  scaleWindowMs: {
    flag: "scale-window-ms",
    env: "BOXOFFICE_SCALE_WINDOW_MS",
    description: "autoscaling: how long load must stay high or low before acting",
    defaultText: "10000",
    parse: wholeNumber(500, 3_600_000),
  },
  scaleUpCooldownMs: {
    flag: "scale-up-cooldown-ms",
    env: "BOXOFFICE_SCALE_UP_COOLDOWN_MS",
    description: "autoscaling: quiet time after adding an instance",
    defaultText: "15000",
    parse: wholeNumber(0, 3_600_000),
  },
  scaleDownCooldownMs: {
    flag: "scale-down-cooldown-ms",
    env: "BOXOFFICE_SCALE_DOWN_COOLDOWN_MS",
    description: "autoscaling: quiet time after removing an instance",
    defaultText: "60000",
    parse: wholeNumber(0, 3_600_000),
  },
  instancePortBase: {
    flag: "instance-port-base",
    env: "BOXOFFICE_INSTANCE_PORT_BASE",
    description: "first port tried for instances (each takes the next free one)",
    defaultText: "9101",
    parse: wholeNumber(1, 65000),
  },
  /**
   * The supervisor's control listener: /metrics for Prometheus, /status and /restart for the CLI. A known
   * port, so that a scrape configuration can name it; 0 picks a free one (written to cluster.json).
   */
  metricsPort: {
    flag: "metrics-port",
    env: "BOXOFFICE_METRICS_PORT",
    description: "port of the supervisor's /metrics (and the CLI's /status, /restart); 0 picks a free one",
    defaultText: String(DEFAULT_METRICS_PORT),
    parse: listenPort,
  },
  metricsHost: {
    flag: "metrics-host",
    env: "BOXOFFICE_METRICS_HOST",
    description: "address the supervisor's metrics port listens on",
    defaultText: "127.0.0.1",
    parse: text(),
  },
  /** --log-level is the instances'; the supervisor and its balancer have this one. */
  clusterLogLevel: {
    flag: "cluster-log-level",
    env: "BOXOFFICE_CLUSTER_LOG_LEVEL",
    description: "log level of the supervisor and the balancer it starts (--log-level is the instances')",
    defaultText: "info",
    parse: oneOf<LogLevel>(...LOG_LEVELS),
  },
} satisfies Record<string, Setting<unknown>>;

export interface ClusterConfig {
  readonly instances: number;
  readonly instancePortBase: number;
  readonly metricsPort: number;
  readonly metricsHost: string;
  readonly logLevel: LogLevel;
  /** Null when --min/--max are not both set: a fixed number of instances. */
  readonly autoscale: AutoscalePolicy | null;
}

export function loadClusterConfig(flags: FlagValues, env: NodeJS.ProcessEnv = process.env): ClusterConfig {
  const read = <T>(setting: Setting<T>) => readSetting(setting, flags, env);
  const min = read(CLUSTER_SETTINGS.min);
  const max = read(CLUSTER_SETTINGS.max);
  let instances = read(CLUSTER_SETTINGS.instances);
  let autoscale: AutoscalePolicy | null = null;
  if (min > 0 || max > 0) {
    if (min < 1 || max < min) throw new ConfigError("--min and --max need 1 <= min <= max");
    instances = Math.min(max, Math.max(min, instances));
    autoscale = {
      minInstances: min,
      maxInstances: max,
      targetInFlight: read(CLUSTER_SETTINGS.targetInFlight),
      lowWatermark: 0.25,
      windowMs: read(CLUSTER_SETTINGS.scaleWindowMs),
      upCooldownMs: read(CLUSTER_SETTINGS.scaleUpCooldownMs),
      downCooldownMs: read(CLUSTER_SETTINGS.scaleDownCooldownMs),
    };
  }
  return Object.freeze({
    instances,
    instancePortBase: read(CLUSTER_SETTINGS.instancePortBase),
    metricsPort: read(CLUSTER_SETTINGS.metricsPort),
    metricsHost: read(CLUSTER_SETTINGS.metricsHost),
    logLevel: read(CLUSTER_SETTINGS.clusterLogLevel),
    autoscale,
  });
}
