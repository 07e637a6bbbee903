/**
 * The load balancer's typed, frozen configuration: the only place the balancer reads the environment.
 * Precedence: flags (what the caller passes in) win over environment variables, which win over defaults.
 */
import { BoxofficeError } from "../domain/errors.js";

/** One instance behind the balancer. */
export interface BackendSpec {
  /** Origin of the instance, `http://host:port` (no path). */
  url: string;
  /** Relative share of traffic, 1–1000. */
  weight: number;
}

/** How the balancer forwards: per HTTP request (the default) or per TCP connection (L4, pipes sockets). */
export type BalancerMode = "http" | "tcp";

/** The HTTP server side facing clients: Node's http server, or the balancer's own minimal one. */
export type FrontServer = "node" | "raw";

/** The HTTP client to the instances in HTTP mode: the balancer's own minimal one, or undici's Pool. */
export type UpstreamClient = "raw" | "undici";

export interface BalancerConfig {
  /** Address to listen on. */
  host: string;
  /** Port to listen on; 0 picks a free one. */
  port: number;
  /** The instances to balance over at start; more can be added at run time through `/_lb/backends`. */
  backends: readonly BackendSpec[];
  /** Bearer token for `/_lb/` admin calls; when unset the admin calls answer 401. */
  adminToken: string | undefined;
  mode: BalancerMode;
  upstreamClient: UpstreamClient;
  front: FrontServer;
  /** Path of the active health check (`GET`), answered 200 by a ready instance. */
  healthPath: string;
  /** Time between two active health checks of one instance. */
  healthIntervalMs: number;
  /** A health check not answered within this time failed. */
  healthTimeoutMs: number;
  /** Consecutive passed checks that bring a down instance back. */
  riseCount: number;
  /** Consecutive failed checks that take an up instance down. */
  fallCount: number;
  /** Consecutive failed requests (500/502/504 or a broken connection) that eject an instance. */
  passiveFailureCount: number;
  /** An instance just added or just back from down ramps its weight from 10% to 100% over this time. */
  slowStartMs: number;
  /** Most requests one instance is given at once (the size of its connection pool). */
  maxActivePerBackend: number;
  /** Most requests waiting for a free instance; past it, 503 at once. */
  maxQueue: number;
  /** Longest a request waits in the queue before it gets 503. */
  queueTimeoutMs: number;
  /** `Retry-After` (seconds) on the balancer's own 503s. */
  retryAfterSeconds: number;
  /** Most times one request is sent again after a failure. */
  maxRetries: number;
  /** Retries of requests that did reach an instance may add at most this fraction to the traffic. */
  retryBudgetRatio: number;
  /** Retries always allowed, whatever the ratio says (the budget's floor, refilled every second). */
  retryBudgetMinPerSecond: number;
  /** Idle time after which a pooled connection to an instance is closed; below the instance's keep-alive. */
  upstreamKeepAliveMs: number;
  /** Time to open a connection to an instance. */
  connectTimeoutMs: number;
  /** Time for an instance to send its response headers. */
  upstreamHeadersTimeoutMs: number;
  /** Longest silence inside a response body, server-sent events included (they send comments to stay open). */
  upstreamBodyTimeoutMs: number;
  /** Largest request head (request line and headers) a client may send; past it, 431. */
  maxHeaderBytes: number;
  /** Time for a client to send its request head; a slower client is cut off with 408. */
  headersTimeoutMs: number;
  /** Time for a client to send its whole request; a slower client is cut off with 408. */
  requestTimeoutMs: number;
  /** Idle time after which a client's keep-alive connection is closed. */
  clientKeepAliveMs: number;
  /**
   * A client with response bytes waiting that takes none of them for this long is disconnected, and the
   * request to the instance (no longer read meanwhile) is closed; no request header turns it off,
   * server-sent events included.
   */
  clientSendTimeoutMs: number;
  /** Request bodies up to this size are held so the request can be sent again; larger ones stream. */
  maxBufferedBodyBytes: number;
  /** A server-sent-events response is ended after this time so clients reconnect and rebalance. */
  sseMaxAgeMs: number;
  /** Most client connections held at once; past it, new connections are refused. */
  maxClientConnections: number;
  /**
   * Connections the kernel may hold ready for the balancer to accept (listen(2)'s backlog, capped by
   * net.core.somaxconn): an on-sale opens thousands at once, and a connection that finds the queue full
   * waits a second or more for its SYN to be sent again.
   */
  listenBacklog: number;
}

export const BALANCER_DEFAULTS: Readonly<Omit<BalancerConfig, "backends" | "adminToken">> = Object.freeze({
  host: "127.0.0.1",
  port: 8080,
  mode: "http",
  upstreamClient: "raw",
  front: "raw",
  healthPath: "/ready",
  healthIntervalMs: 2000,
  healthTimeoutMs: 1000,
  riseCount: 2,
  fallCount: 3,
  passiveFailureCount: 5,
  slowStartMs: 5000,
  maxActivePerBackend: 64,
  maxQueue: 1024,
  queueTimeoutMs: 2000,
  retryAfterSeconds: 1,
  maxRetries: 2,
  retryBudgetRatio: 0.2,
  retryBudgetMinPerSecond: 10,
  upstreamKeepAliveMs: 4000,
  connectTimeoutMs: 2000,
  upstreamHeadersTimeoutMs: 30_000,
  upstreamBodyTimeoutMs: 30_000,
  maxHeaderBytes: 16_384,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  clientKeepAliveMs: 5000,
  clientSendTimeoutMs: 30_000,
  maxBufferedBodyBytes: 65_536,
  sseMaxAgeMs: 300_000,
  maxClientConnections: 20_000,
  listenBacklog: 4096,
});

type NumericKey = {
  [K in keyof BalancerConfig]: BalancerConfig[K] extends number ? K : never;
}[keyof BalancerConfig];

/** Every numeric option, with its smallest allowed value; each is also `BOXOFFICE_LB_<SNAKE_CASE>`. */
const NUMERIC_MINIMUMS: Record<Exclude<NumericKey, "port">, number> = {
  healthIntervalMs: 10,
  healthTimeoutMs: 1,
  riseCount: 1,
  fallCount: 1,
  passiveFailureCount: 1,
  slowStartMs: 0,
  maxActivePerBackend: 1,
  maxQueue: 0,
  queueTimeoutMs: 1,
  retryAfterSeconds: 0,
  maxRetries: 0,
  retryBudgetRatio: 0,
  retryBudgetMinPerSecond: 0,
  upstreamKeepAliveMs: 1,
  connectTimeoutMs: 1,
  upstreamHeadersTimeoutMs: 1,
  upstreamBodyTimeoutMs: 1,
  maxHeaderBytes: 1024,
  headersTimeoutMs: 1,
  requestTimeoutMs: 1,
  clientKeepAliveMs: 1,
  clientSendTimeoutMs: 1,
  maxBufferedBodyBytes: 0,
  sseMaxAgeMs: 1,
  maxClientConnections: 1,
  listenBacklog: 1,
};

/** What the command line passes in; every field optional, strings as typed. */
export type BalancerFlags = Partial<Record<keyof BalancerConfig, string | number | string[] | undefined>>;

export class BalancerConfigError extends BoxofficeError {
  constructor(message: string) {
    super("INVALID_CONFIG", message);
  }
}

/** `healthIntervalMs` → `BOXOFFICE_LB_HEALTH_INTERVAL_MS`. */
export function envNameOf(option: string): string {
  return `BOXOFFICE_LB_${option.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}`;
}

/**
 * Parses one backend: `http://127.0.0.1:9101`, optionally with its weight in the fragment
 * (`http://127.0.0.1:9101#weight=3`), which is never sent to anyone.
 */
export function parseBackendSpec(text: string, weight?: number): BackendSpec {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new BalancerConfigError(`backend "${text}" is not a URL`);
  }
  if (url.protocol !== "http:") throw new BalancerConfigError(`backend "${text}": only http:// is supported`);
  if (url.pathname !== "/" || url.search !== "")
    throw new BalancerConfigError(`backend "${text}" must be an origin (no path or query)`);
  let parsedWeight = weight ?? 1;
  if (url.hash !== "") {
    const match = /^#weight=(\d+)$/.exec(url.hash);
    if (!match) throw new BalancerConfigError(`backend "${text}": the fragment may only be #weight=N`);
    parsedWeight = Number(match[1]);
  }
  return { url: url.origin, weight: checkWeight(parsedWeight) };
}

export function checkWeight(weight: unknown): number {
  if (typeof weight !== "number" || !Number.isInteger(weight) || weight < 1 || weight > 1000)
    throw new BalancerConfigError(`weight must be an integer from 1 to 1000, not ${String(weight)}`);
  return weight;
}

function parseNumber(name: string, value: string | number, minimum: number): number {
  const parsed = typeof value === "number" ? value : Number(value.trim());
  if (!Number.isFinite(parsed) || parsed < minimum || (typeof value === "string" && value.trim() === ""))
    throw new BalancerConfigError(`${name} must be a number >= ${minimum}, not "${value}"`);
  return parsed;
}

/** Builds the frozen config from flags (win), then the environment, then the defaults. */
export function loadBalancerConfig(
  flags: BalancerFlags = {},
  env: NodeJS.ProcessEnv = process.env,
): Readonly<BalancerConfig> {
  const pick = (key: keyof BalancerConfig, envName: string): string | number | string[] | undefined =>
    flags[key] ?? env[envName];

  const host = String(pick("host", "BOXOFFICE_HOST") ?? BALANCER_DEFAULTS.host);
  const port = parseNumber("port", (pick("port", "BOXOFFICE_PORT") as string) ?? BALANCER_DEFAULTS.port, 0);
  if (!Number.isInteger(port) || port > 65535) throw new BalancerConfigError(`port ${port} is not a port`);

  const rawBackends = flags.backends ?? env.BOXOFFICE_BACKENDS;
  const backendTexts = (
    Array.isArray(rawBackends) ? rawBackends : String(rawBackends ?? "").split(/[\s,]+/)
  ).filter((text) => text.trim() !== "");
  const backends = backendTexts.map((text) => parseBackendSpec(text));
  const seen = new Set<string>();
  for (const backend of backends) {
    if (seen.has(backend.url)) throw new BalancerConfigError(`backend ${backend.url} is listed twice`);
    seen.add(backend.url);
  }

  const mode = String(pick("mode", envNameOf("mode")) ?? BALANCER_DEFAULTS.mode);
  if (mode !== "http" && mode !== "tcp")
    throw new BalancerConfigError(`mode must be http or tcp, not ${mode}`);
  const upstreamClient = String(
    pick("upstreamClient", envNameOf("upstreamClient")) ?? BALANCER_DEFAULTS.upstreamClient,
  );
  if (upstreamClient !== "raw" && upstreamClient !== "undici")
    throw new BalancerConfigError(`upstreamClient must be raw or undici, not ${upstreamClient}`);
  const front = String(pick("front", envNameOf("front")) ?? BALANCER_DEFAULTS.front);
  if (front !== "node" && front !== "raw")
    throw new BalancerConfigError(`front must be node or raw, not ${front}`);
  const healthPath = String(pick("healthPath", envNameOf("healthPath")) ?? BALANCER_DEFAULTS.healthPath);
  if (!healthPath.startsWith("/")) throw new BalancerConfigError(`healthPath must start with "/"`);
  const adminToken = (pick("adminToken", "BOXOFFICE_ADMIN_TOKEN") as string | undefined) || undefined;

  const numbers = {} as Record<Exclude<NumericKey, "port">, number>;
  for (const [key, minimum] of Object.entries(NUMERIC_MINIMUMS) as [Exclude<NumericKey, "port">, number][]) {
    const value = pick(key, envNameOf(key)) as string | number | undefined;
    numbers[key] = value === undefined ? BALANCER_DEFAULTS[key] : parseNumber(key, value, minimum);
  }
  if (numbers.upstreamKeepAliveMs >= 5000)
    console.warn(
      "balancer: upstreamKeepAliveMs >= 5000 ms; keep it below the instances' keep-alive timeout " +
        "(Node's default is 5000 ms) or a reused connection may be closed under a request",
    );

  return Object.freeze({
    ...numbers,
    host,
    port,
    backends: Object.freeze(backends),
    adminToken,
    mode,
    upstreamClient,
    front,
    healthPath,
  });
}
