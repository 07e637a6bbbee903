/**
 * The load balancer's settings (`boxoffice lb`), in the same table style as the server's: each option
 * once, with its flag, variable, default, bounds and meaning; `boxoffice lb --help` and the typed, frozen
 * BalancerConfig are built from it. Variables: BOXOFFICE_PORT, BOXOFFICE_HOST, BOXOFFICE_BACKENDS,
 * BOXOFFICE_ADMIN_TOKEN, and `BOXOFFICE_LB_<NAME_IN_SNAKE_CASE>` for every other option.
 */
import { isIP } from "node:net";
import { ConfigError } from "../domain/errors.js";
import { LOG_LEVELS, type LogLevel } from "../log/logger.js";
import type { FlagValues, Setting, SettingsOf } from "./settings.js";
import { listenPort, numberFrom, oneOf, otelEndpoint, readSettings, text, wholeNumber } from "./settings.js";

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

/**
 * Where a request goes: to the least-loaded instance, or, for a request naming an event
 * (`/v1/events/<id>…`), to the instance that event's id picks among those up with room (then the least
 * loaded, when it has none), so that one event's sales are batched in one instance.
 */
export type Placement = "least-connections" | "event";

/** The HTTP client to the instances in HTTP mode: the balancer's own minimal one, or undici's Pool. */
export type UpstreamClient = "raw" | "undici";

/**
 * Parses one backend: `http://127.0.0.1:9101`, optionally with its weight in the fragment
 * (`http://127.0.0.1:9101#weight=3`), which is never sent to anyone.
 */
export function parseBackendSpec(text: string, weight?: number): BackendSpec {
  let url: URL;
  try {
    url = new URL(text.trim());
  } catch {
    throw new ConfigError(`backend "${text}" is not a URL`);
  }
  if (url.protocol !== "http:") throw new ConfigError(`backend "${text}": only http:// is supported`);
  if (url.pathname !== "/" || url.search !== "")
    throw new ConfigError(`backend "${text}" must be an origin (no path or query)`);
  let parsedWeight = weight ?? 1;
  if (url.hash !== "") {
    const match = /^#weight=(\d+)$/.exec(url.hash);
    if (!match) throw new ConfigError(`backend "${text}": the fragment may only be #weight=N`);
    parsedWeight = Number(match[1]);
  }
  return { url: url.origin, weight: checkWeight(parsedWeight) };
}

export function checkWeight(weight: unknown): number {
  if (typeof weight !== "number" || !Number.isInteger(weight) || weight < 1 || weight > 1000)
    throw new ConfigError(`weight must be an integer from 1 to 1000, not ${String(weight)}`);
  return weight;
}

/** The instances, separated by commas or spaces (the repeated flag's values arrive joined by commas). */
function backendList(value: string): readonly BackendSpec[] {
  const backends = value
    .split(/[\s,]+/)
    .filter((entry) => entry.trim() !== "")
    .map((entry) => parseBackendSpec(entry));
  const seen = new Set<string>();
  for (const backend of backends) {
    if (seen.has(backend.url)) throw new ConfigError(`backend ${backend.url} is listed twice`);
    seen.add(backend.url);
  }
  return Object.freeze(backends);
}

/** A name to resolve and the port its instances listen on (`--backends-dns`). */
export interface DnsBackendsSpec {
  /** The DNS name whose A and AAAA records are the instances, e.g. a Kubernetes headless Service. */
  name: string;
  port: number;
}

/** A DNS server to ask instead of the system's (`--dns-server`). */
export interface DnsServerSpec {
  host: string;
  port: number;
}

/** A DNS name as RFC 1123 allows it (letters, digits, hyphens, dots; labels of 1 to 63, 253 in all). */
const DNS_NAME =
  /^(?=.{1,253}\.?$)(?:[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.)*[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9])?\.?$/;

const portNumber = wholeNumber(1, 65535);

/** `name:port`: the instances are every address the name resolves to, on that port. */
function dnsBackends(value: string, name: string): DnsBackendsSpec | undefined {
  if (value === "") return undefined;
  const match = /^(.+):(\d+)$/.exec(value.trim());
  if (!match || !DNS_NAME.test(match[1]!))
    throw new ConfigError(
      `${name} must be name:port (e.g. boxoffice.default.svc.cluster.local:8080), not "${value}"`,
    );
  return { name: match[1]!, port: portNumber(match[2]!, name) };
}

/** `host`, `host:port`, `[v6]:port` or a bare IPv6 address; port 53 when not given. */
function dnsServer(value: string, name: string): DnsServerSpec | undefined {
  if (value === "") return undefined;
  const text = value.trim();
  if (isIP(text) !== 0) return { host: text, port: 53 };
  const match = /^(?:\[([0-9A-Fa-f:.]+)\]|([^:[\]]+)):(\d+)$/.exec(text);
  const host = match?.[1] ?? match?.[2];
  if (match === null || host === undefined || isIP(host) === 0)
    throw new ConfigError(`${name} must be an IP address, optionally with :port, not "${value}"`);
  return { host, port: portNumber(match[3]!, name) };
}

/** An optional http://host:port address, without a path: empty for none. */
function controlUrl(value: string, name: string): string | undefined {
  if (value === "") return undefined;
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new ConfigError(`${name} must be an http://host:port address, not "${value}"`);
  }
  if (url.protocol !== "http:" || url.pathname !== "/" || url.search !== "" || url.username !== "")
    throw new ConfigError(`${name} must be an http://host:port address, not "${value}"`);
  return url.origin;
}

/** An optional port: empty for none. */
function optionalPort(value: string, name: string): number | undefined {
  return value === "" ? undefined : listenPort(value, name);
}

/** A share from 0 to 1. */
function share(value: string, name: string): number {
  const number = value.trim() === "" ? Number.NaN : Number(value.trim());
  if (!Number.isFinite(number) || number < 0 || number > 1)
    throw new ConfigError(`${name} must be a number from 0 to 1, not "${value}"`);
  return number;
}

/** A numeric option: `--<flag> <n>`, variable `BOXOFFICE_LB_<FLAG IN SNAKE CASE>`, any number >= `min`. */
function numeric(flag: string, defaultText: string, min: number, description: string): Setting<number> {
  return {
    flag,
    env: `BOXOFFICE_LB_${flag.replace(/-/g, "_").toUpperCase()}`,
    description,
    defaultText,
    valueName: "n",
    parse: numberFrom(min),
  };
}

/** Every balancer option, in the order `boxoffice lb --help` and docs/balancer.md list them. */
export const BALANCER_SETTINGS = {
  port: {
    flag: "port",
    env: "BOXOFFICE_PORT",
    description: "port to listen on (0 picks a free one)",
    defaultText: "8080",
    valueName: "port",
    parse: listenPort,
  },
  host: {
    flag: "host",
    env: "BOXOFFICE_HOST",
    description: "address to listen on",
    defaultText: "127.0.0.1",
    valueName: "host",
    parse: text(),
  },
  /** The instances to balance over at start; more can be added at run time through `/_lb/backends`. */
  backends: {
    flag: "backend",
    env: "BOXOFFICE_BACKENDS",
    description:
      "an instance, http://host:port, optionally #weight=N (1-1000); repeatable (the variable: comma- or space-separated)",
    defaultText: "",
    valueName: "url",
    repeatable: true,
    parse: backendList,
  },
  /**
   * Instances found by DNS, like HAProxy's server-template: every A and AAAA address of the name, on the
   * port, re-resolved every `dnsIntervalMs`; new addresses are health-checked before they take requests,
   * gone ones are drained (their in-flight requests finish). Works beside `--backend`.
   */
  backendsDns: {
    flag: "backends-dns",
    env: "BOXOFFICE_LB_BACKENDS_DNS",
    description:
      "instances by DNS, name:port: every A/AAAA address of the name, followed as it changes (e.g. a Kubernetes headless Service)",
    defaultText: "",
    valueName: "name:port",
    parse: dnsBackends,
  },
  dnsIntervalMs: numeric("dns-interval-ms", "5000", 100, "time between two resolutions of --backends-dns"),
  /** For a test's own DNS server, or a resolver other than the system's (/etc/resolv.conf). */
  dnsServer: {
    flag: "dns-server",
    env: "BOXOFFICE_LB_DNS_SERVER",
    description: "DNS server to ask for --backends-dns, ip[:port] (default: the system's resolvers)",
    defaultText: "",
    valueName: "ip:port",
    parse: dnsServer,
  },
  /**
   * Bearer token for `/_lb/` admin calls; unset, they answer 401. The flag is kept only so that existing
   * command lines go on working: a command line shows in `ps`, so the variable is the way to pass it.
   */
  adminToken: {
    flag: "admin-token",
    env: "BOXOFFICE_ADMIN_TOKEN",
    description:
      "bearer token for the /_lb/ admin calls; the flag is kept for compatibility only (a command line " +
      "shows in `ps`): set the variable instead",
    defaultText: "",
    valueName: "token",
    parse: (value: string): string | undefined => (value === "" ? undefined : value),
  },
  /**
   * With it, `/_lb/` (health, metrics and the admin calls) is served on this port only, and the public
   * port passes `/_lb/...` on to the instances like any other path (which answer 404).
   */
  adminPort: {
    flag: "admin-port",
    env: "BOXOFFICE_LB_ADMIN_PORT",
    description: "serve /_lb/ (admin calls, health, metrics) on this port only, not on the public one",
    defaultText: "",
    valueName: "port",
    parse: optionalPort,
  },
  adminHost: {
    flag: "admin-host",
    env: "BOXOFFICE_LB_ADMIN_HOST",
    description: "address the --admin-port listens on",
    defaultText: "127.0.0.1",
    valueName: "host",
    parse: text(),
  },
  /**
   * The supervisor's control address (`boxoffice up` sets it): `/_lb/cluster` and `/_lb/cluster/…` are
   * passed on to its `/cluster…` calls, behind the admin token, for the dashboard.
   */
  clusterUrl: {
    flag: "cluster-url",
    env: "BOXOFFICE_LB_CLUSTER_URL",
    description:
      "the supervisor's control address, http://host:port, that /_lb/cluster/ is passed on to (set by `up`)",
    defaultText: "",
    valueName: "url",
    parse: controlUrl,
  },
  logLevel: {
    flag: "log-level",
    env: "BOXOFFICE_LB_LOG_LEVEL",
    description: "pino log level of the balancer's own events",
    defaultText: "info",
    valueName: "level",
    parse: oneOf<LogLevel>(...LOG_LEVELS),
  },
  /** One JSON line per proxied request (docs/operations.md); off when empty. */
  accessLog: {
    flag: "access-log",
    env: "BOXOFFICE_LB_ACCESS_LOG",
    description: "access log: a file path, or stdout; one JSON line per request (off when unset)",
    defaultText: "",
    valueName: "path|stdout",
    parse: (value: string): string | undefined => (value === "" ? undefined : value),
  },
  accessLogSample: {
    flag: "access-log-sample",
    env: "BOXOFFICE_LB_ACCESS_LOG_SAMPLE",
    description: "share of requests written to the access log, 0 to 1",
    defaultText: "1",
    valueName: "share",
    parse: share,
  },
  /** Query strings may carry what should not be kept (a token, an email); kept only when asked. */
  accessLogQuery: {
    flag: "access-log-query",
    env: "BOXOFFICE_LB_ACCESS_LOG_QUERY",
    description: "drop (the default) or keep the query string in the access log's path",
    defaultText: "drop",
    valueName: "drop|keep",
    parse: oneOf<"drop" | "keep">("drop", "keep"),
  },
  /** When the disk is slower than the traffic, lines past this are dropped and counted, never waited for. */
  accessLogBufferBytes: numeric(
    "access-log-buffer-bytes",
    "4194304",
    1024,
    "access log lines waiting to be written, at most; past it lines are dropped and counted",
  ),
  /** A span per proxied request, the parent of the instance's (its traceparent is passed on). */
  otelEndpoint: {
    flag: "otel-endpoint",
    env: "OTEL_EXPORTER_OTLP_ENDPOINT",
    description: "OpenTelemetry: send a span per request over OTLP/HTTP to this URL; off when unset",
    defaultText: "",
    valueName: "url",
    parse: otelEndpoint,
  },
  mode: {
    flag: "mode",
    env: "BOXOFFICE_LB_MODE",
    description: "http (per request) or tcp (L4, pipes connections)",
    defaultText: "http",
    valueName: "mode",
    parse: oneOf<BalancerMode>("http", "tcp"),
  },
  upstreamClient: {
    flag: "upstream-client",
    env: "BOXOFFICE_LB_UPSTREAM_CLIENT",
    description: "raw (the balancer's own minimal HTTP/1.1 client) or undici (undici's Pool)",
    defaultText: "raw",
    valueName: "client",
    parse: oneOf<UpstreamClient>("raw", "undici"),
  },
  front: {
    flag: "front",
    env: "BOXOFFICE_LB_FRONT",
    description: "raw (the balancer's own minimal HTTP/1.1 server side) or node (Node's http server)",
    defaultText: "raw",
    valueName: "server",
    parse: oneOf<FrontServer>("raw", "node"),
  },
  /** Path of the active health check (`GET`), answered 200 by a ready instance. */
  healthPath: {
    flag: "health-path",
    env: "BOXOFFICE_LB_HEALTH_PATH",
    description: "health check path",
    defaultText: "/ready",
    valueName: "path",
    parse: (value: string, name: string): string => {
      if (!value.startsWith("/")) throw new ConfigError(`${name} must start with "/", not "${value}"`);
      return value;
    },
  },
  healthIntervalMs: numeric(
    "health-interval-ms",
    "2000",
    10,
    "time between two health checks of an instance",
  ),
  healthTimeoutMs: numeric("health-timeout-ms", "1000", 1, "a health check not answered in this time failed"),
  riseCount: numeric("rise-count", "2", 1, "passed checks in a row that bring an instance back"),
  fallCount: numeric("fall-count", "3", 1, "failed checks in a row that take an instance down"),
  passiveFailureCount: numeric(
    "passive-failure-count",
    "5",
    1,
    "failed requests in a row (500/502/504, broken connection) that eject an instance",
  ),
  /** An instance just added or just back from down ramps its weight from 10% to 100% over this time. */
  slowStartMs: numeric(
    "slow-start-ms",
    "5000",
    0,
    "an instance added or back from down ramps from 10% to full weight over this time",
  ),
  placement: {
    flag: "placement",
    env: "BOXOFFICE_LB_PLACEMENT",
    description:
      "least-connections, or event (a request under /v1/events/<id> goes to the instance that id picks while it is up with room)",
    defaultText: "least-connections",
    valueName: "rule",
    parse: oneOf<Placement>("least-connections", "event"),
  },
  /** The size of an instance's connection pool. */
  maxActivePerBackend: numeric(
    "max-active-per-backend",
    "64",
    1,
    "most requests one instance is given at once",
  ),
  maxQueue: numeric(
    "max-queue",
    "1024",
    0,
    "most requests waiting for an instance with room; past it, 503 at once",
  ),
  queueTimeoutMs: numeric("queue-timeout-ms", "2000", 1, "longest wait in the queue before 503"),
  retryAfterSeconds: numeric("retry-after-seconds", "1", 0, "Retry-After on the balancer's own 503s"),
  maxRetries: numeric("max-retries", "2", 0, "most times one request is sent again"),
  /** Retries of requests that did reach an instance may add at most this fraction to the traffic. */
  retryBudgetRatio: numeric(
    "retry-budget-ratio",
    "0.2",
    0,
    "retries of requests that reached an instance, as a share of all requests",
  ),
  /** The retry budget's floor, refilled every second, whatever the ratio says. */
  retryBudgetMinPerSecond: numeric(
    "retry-budget-min-per-second",
    "10",
    0,
    "retries always allowed per second",
  ),
  /** Keep it below the instances' keep-alive timeout (see balancerConfigWarnings). */
  upstreamKeepAliveMs: numeric(
    "upstream-keep-alive-ms",
    "4000",
    1,
    "idle time before a pooled connection to an instance is closed",
  ),
  connectTimeoutMs: numeric("connect-timeout-ms", "2000", 1, "time to connect to an instance"),
  upstreamHeadersTimeoutMs: numeric(
    "upstream-headers-timeout-ms",
    "30000",
    1,
    "time for an instance to send its response headers",
  ),
  /** Server-sent events included: they send comments to stay open. */
  upstreamBodyTimeoutMs: numeric(
    "upstream-body-timeout-ms",
    "30000",
    1,
    "longest silence inside a response body (server-sent events too)",
  ),
  maxHeaderBytes: numeric(
    "max-header-bytes",
    "16384",
    1024,
    "largest request head a client may send (431 past it)",
  ),
  headersTimeoutMs: numeric(
    "headers-timeout-ms",
    "10000",
    1,
    "time for a client to send its request head (408 past it)",
  ),
  requestTimeoutMs: numeric(
    "request-timeout-ms",
    "30000",
    1,
    "time for a client to send its whole request (408 past it)",
  ),
  clientKeepAliveMs: numeric(
    "client-keep-alive-ms",
    "5000",
    1,
    "idle time before a client's keep-alive connection is closed",
  ),
  /**
   * A client with response bytes waiting that takes none of them for this long is disconnected, and the
   * request to the instance (no longer read meanwhile) is closed; no request header turns it off,
   * server-sent events included.
   */
  clientSendTimeoutMs: numeric(
    "client-send-timeout-ms",
    "30000",
    1,
    "a client that takes none of its response for this long is disconnected",
  ),
  maxBufferedBodyBytes: numeric(
    "max-buffered-body-bytes",
    "65536",
    0,
    "request bodies up to this size are held for retries; larger ones stream",
  ),
  /** So that clients reconnect and rebalance. */
  sseMaxAgeMs: numeric(
    "sse-max-age-ms",
    "300000",
    1,
    "server-sent-events responses end after this time so clients rebalance",
  ),
  /** Past it, new connections are refused. */
  maxClientConnections: numeric("max-client-connections", "20000", 1, "most client connections at once"),
  /**
   * listen(2)'s backlog, capped by net.core.somaxconn: an on-sale opens thousands of connections at once,
   * and a connection that finds the queue full waits a second or more for its SYN to be sent again.
   */
  listenBacklog: numeric(
    "listen-backlog",
    "4096",
    1,
    "connections the kernel holds ready to accept (capped by net.core.somaxconn)",
  ),
} satisfies Record<string, Setting<unknown>>;

/** The balancer's typed, frozen configuration; each field is described in BALANCER_SETTINGS. */
export type BalancerConfig = SettingsOf<typeof BALANCER_SETTINGS>;

/** Builds the frozen config from flags (win), then the environment, then the defaults. */
export function loadBalancerConfig(
  flags: FlagValues = {},
  env: NodeJS.ProcessEnv = process.env,
): BalancerConfig {
  return readSettings(BALANCER_SETTINGS, flags, env);
}

/** What a valid config still may get wrong, for whoever starts the balancer to log. */
export function balancerConfigWarnings(config: BalancerConfig): string[] {
  const warnings: string[] = [];
  if (config.upstreamKeepAliveMs >= 5000)
    warnings.push(
      "upstreamKeepAliveMs >= 5000 ms; keep it below the instances' keep-alive timeout " +
        "(Node's default is 5000 ms) or a reused connection may be closed under a request",
    );
  return warnings;
}
