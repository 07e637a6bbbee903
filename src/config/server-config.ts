/**
 * The typed, frozen configuration of one server instance (`boxoffice server`, and each instance of
 * `boxoffice up`), from flags and BOXOFFICE_* variables: one table, from which the options, --help and the
 * type ServerConfig all come.
 */
import os from "node:os";
import path from "node:path";
import type { LockConfig } from "../lock/create-lock-provider.js";
import { parseLockSetting } from "../lock/create-lock-provider.js";
import type { LockScope } from "../lock/lock-provider.js";
import { BoxofficeError, ConfigError } from "../domain/errors.js";
import { LOG_LEVELS, type LogLevel } from "../log/logger.js";
import type { FlagValues, Setting, SettingsOf } from "./settings.js";
import { listenPort, oneOf, otelEndpoint, readSettings, text, wholeNumber } from "./settings.js";

export type StoreLayout = "single" | "per-event";
export type Durability = "full" | "normal";

const lockSetting = (value: string, name: string): LockConfig => {
  try {
    return parseLockSetting(value);
  } catch (error) {
    if (error instanceof BoxofficeError) throw new ConfigError(`${name}: ${error.message}`);
    throw error;
  }
};

const storeSetting = (value: string, name: string): string => {
  if (value === "sqlite" || /^postgres(ql)?:\/\//.test(value)) return value;
  throw new ConfigError(`${name} must be "sqlite" or a postgres:// URL, not "${value}"`);
};

const optionalPath = (value: string): string | null => (value === "" ? null : path.resolve(value));
const optionalText = (value: string, name: string): string | null => {
  if (value === "") return null;
  if (!/^[\x20-\x7E]{1,500}$/.test(value)) throw new ConfigError(`${name} must be printable ASCII`);
  return value;
};

/** Every server setting, in the order `boxoffice server --help` lists them. */
export const SERVER_SETTINGS = {
  port: {
    flag: "port",
    env: "BOXOFFICE_PORT",
    description: "port to listen on (0 picks a free one)",
    defaultText: "8080",
    parse: listenPort,
  },
  host: {
    flag: "host",
    env: "BOXOFFICE_HOST",
    description: "address to listen on",
    defaultText: "127.0.0.1",
    parse: text(),
  },
  /**
   * With it, the admin calls (event creation) and /metrics are served on this port only, and the public
   * port answers 404 for them; /health and /ready are on both. Unset: everything on the public port.
   */
  adminPort: {
    flag: "admin-port",
    env: "BOXOFFICE_ADMIN_PORT",
    description: "serve the admin calls and /metrics on this port only, not on the public one",
    defaultText: "",
    parse: (value: string, name: string): number | undefined =>
      value === "" ? undefined : listenPort(value, name),
  },
  adminHost: {
    flag: "admin-host",
    env: "BOXOFFICE_ADMIN_HOST",
    description: "address the --admin-port listens on",
    defaultText: "127.0.0.1",
    parse: text(),
  },
  /** Off unless set; the variable is OpenTelemetry's standard one. */
  otelEndpoint: {
    flag: "otel-endpoint",
    env: "OTEL_EXPORTER_OTLP_ENDPOINT",
    description:
      "OpenTelemetry: send traces over OTLP/HTTP to this URL (spans go to <url>/v1/traces); off when unset",
    defaultText: "",
    parse: otelEndpoint,
  },
  /** Where the embedded store keeps its files and where the admin token lives. */
  dataDir: {
    flag: "data",
    env: "BOXOFFICE_DATA",
    description: "data directory (SQLite files, admin token)",
    defaultText: "./data",
    parse: (value: string) => path.resolve(value),
  },
  /** "sqlite" (embedded, in dataDir) or a postgres:// URL. */
  store: {
    flag: "store",
    env: "BOXOFFICE_STORE",
    description: 'store: "sqlite" (embedded) or a postgres:// URL',
    defaultText: "sqlite",
    parse: storeSetting,
  },
  layout: {
    flag: "layout",
    env: "BOXOFFICE_LAYOUT",
    description: "SQLite layout: single (one file) or per-event (a file per event)",
    defaultText: "per-event",
    parse: oneOf<StoreLayout>("single", "per-event"),
  },
  durability: {
    flag: "durability",
    env: "BOXOFFICE_DURABILITY",
    description: "SQLite synchronous mode: full (fsync every commit) or normal",
    defaultText: "full",
    parse: oneOf<Durability>("full", "normal"),
  },
  maxOpenEvents: {
    flag: "max-open-events",
    env: "BOXOFFICE_MAX_OPEN_EVENTS",
    description:
      "per-event layout: event files kept open (~1.5 MB each); keep it above the events selling at once, or their files are reopened at every sale",
    defaultText: "256",
    parse: wholeNumber(1, 100_000),
  },
  commitThreads: {
    flag: "commit-threads",
    env: "BOXOFFICE_COMMIT_THREADS",
    description: "per-event layout: threads committing several events' sales in parallel (0: none)",
    defaultText: "4",
    parse: wholeNumber(0, 64),
  },
  pgPoolSize: {
    flag: "pg-pool-size",
    env: "BOXOFFICE_PG_POOL_SIZE",
    description: "PostgreSQL store: connections per instance",
    defaultText: "10",
    parse: wholeNumber(1, 1000),
  },
  pgStatementTimeoutMs: {
    flag: "pg-statement-timeout-ms",
    env: "BOXOFFICE_PG_STATEMENT_TIMEOUT_MS",
    description: "PostgreSQL store: longest a statement may run before 503",
    defaultText: "5000",
    parse: wholeNumber(100, 600_000),
  },
  /**
   * false: the instance changes no schema. It checks the store's schema version and refuses to start when
   * it is behind, so it can run as a database role without DDL rights; `boxoffice migrate` applies them.
   */
  migrate: {
    flag: "migrate",
    env: "BOXOFFICE_MIGRATE",
    description:
      "apply pending store migrations on start; false: only check them and refuse to start when behind",
    defaultText: "true",
    valueName: "true|false",
    parse: (value: string, name: string): boolean => oneOf("true", "false")(value, name) === "true",
  },
  lock: {
    flag: "lock",
    env: "BOXOFFICE_LOCK",
    description: "lock service for the sell path",
    defaultText: "file",
    parse: lockSetting,
  },
  lockScope: {
    flag: "lock-scope",
    env: "BOXOFFICE_LOCK_SCOPE",
    description:
      "one lock per event, one global lock, or auto: global with the single SQLite layout (one file has one writer at a time, so per-event locks only cost), event otherwise",
    defaultText: "auto",
    parse: oneOf<LockScope | "auto">("auto", "event", "global"),
  },
  lockLeaseMs: {
    flag: "lock-lease-ms",
    env: "BOXOFFICE_LOCK_LEASE_MS",
    description: "lease of a sell-path lock",
    defaultText: "5000",
    parse: wholeNumber(100, 600_000),
  },
  lockWaitMs: {
    flag: "lock-wait-ms",
    env: "BOXOFFICE_LOCK_WAIT_MS",
    description: "longest wait for the lock before answering 503",
    defaultText: "2000",
    parse: wholeNumber(0, 600_000),
  },
  /** Sent as X-Served-By. */
  instanceId: {
    flag: "instance-id",
    env: "BOXOFFICE_INSTANCE_ID",
    description: "name sent as X-Served-By",
    defaultText: "",
    parse: (value: string, name: string) => {
      const id = value || `${os.hostname()}-${process.pid}`;
      // It goes into a response header as is.
      if (!/^[\x21-\x7E]{1,100}$/.test(id)) {
        throw new ConfigError(`${name} must be 1 to 100 printable ASCII characters without spaces`);
      }
      return id;
    },
  },
  maxBatch: {
    flag: "max-batch",
    env: "BOXOFFICE_MAX_BATCH",
    description: "sales sharing one lock and one commit",
    defaultText: "256",
    parse: wholeNumber(1, 10_000),
  },
  maxQueuePerEvent: {
    flag: "max-queue-per-event",
    env: "BOXOFFICE_MAX_QUEUE_PER_EVENT",
    description: "sales waiting for one event before 503",
    defaultText: "4096",
    parse: wholeNumber(1, 1_000_000),
  },
  maxQueueTotal: {
    flag: "max-queue-total",
    env: "BOXOFFICE_MAX_QUEUE_TOTAL",
    description: "sales waiting in this instance before 503",
    defaultText: "16384",
    parse: wholeNumber(1, 10_000_000),
  },
  sweepIntervalMs: {
    flag: "sweep-interval-ms",
    env: "BOXOFFICE_SWEEP_INTERVAL_MS",
    description: "mean time between expired-hold sweeps",
    defaultText: "1000",
    parse: wholeNumber(10, 3_600_000),
  },
  waitingRoomCacheMs: {
    flag: "waiting-room-cache-ms",
    env: "BOXOFFICE_WAITING_ROOM_CACHE_MS",
    description:
      "waiting rooms: how long an instance trusts what it read of an event's room (a room turned on mid-sale reaches the other instances within it; never across a sale's opening)",
    defaultText: "1000",
    parse: wholeNumber(0, 600_000),
  },
  webhookRelayIntervalMs: {
    flag: "webhook-relay-interval-ms",
    env: "BOXOFFICE_WEBHOOK_RELAY_INTERVAL_MS",
    description: "webhooks: mean time between relay ticks (move the outbox, claim due deliveries)",
    defaultText: "1000",
    parse: wholeNumber(10, 600_000),
  },
  webhookConcurrency: {
    flag: "webhook-concurrency",
    env: "BOXOFFICE_WEBHOOK_CONCURRENCY",
    description: "webhooks: deliveries in flight per instance (0: this instance delivers none)",
    defaultText: "16",
    parse: wholeNumber(0, 1000),
  },
  webhookTimeoutMs: {
    flag: "webhook-timeout-ms",
    env: "BOXOFFICE_WEBHOOK_TIMEOUT_MS",
    description: "webhooks: connect, headers and body timeout, and the deadline of one attempt",
    defaultText: "10000",
    parse: wholeNumber(100, 120_000),
  },
  webhookRetryBaseMs: {
    flag: "webhook-retry-base-ms",
    env: "BOXOFFICE_WEBHOOK_RETRY_BASE_MS",
    description: "webhooks: ceiling of the first retry's wait (doubles per attempt, full jitter)",
    defaultText: "5000",
    parse: wholeNumber(10, 3_600_000),
  },
  webhookRetryMaxMs: {
    flag: "webhook-retry-max-ms",
    env: "BOXOFFICE_WEBHOOK_RETRY_MAX_MS",
    description: "webhooks: longest wait between two attempts",
    defaultText: "3600000",
    parse: wholeNumber(100, 86_400_000),
  },
  webhookRetryHours: {
    flag: "webhook-retry-hours",
    env: "BOXOFFICE_WEBHOOK_RETRY_HOURS",
    description: "webhooks: how long a delivery is retried before it is marked failed",
    defaultText: "24",
    parse: wholeNumber(24, 720),
  },
  webhookRetentionDays: {
    flag: "webhook-retention-days",
    env: "BOXOFFICE_WEBHOOK_RETENTION_DAYS",
    description: "webhooks: how long delivered and failed deliveries are kept (pending ones always are)",
    defaultText: "30",
    parse: wholeNumber(1, 3650),
  },
  logLevel: {
    flag: "log-level",
    env: "BOXOFFICE_LOG_LEVEL",
    description: "pino log level",
    defaultText: "info",
    parse: oneOf<LogLevel>(...LOG_LEVELS),
  },
  /** After SIGTERM, how long in-flight requests may take before connections are cut. */
  shutdownTimeoutMs: {
    flag: "shutdown-timeout-ms",
    env: "BOXOFFICE_SHUTDOWN_TIMEOUT_MS",
    description: "on SIGTERM, longest wait for in-flight requests",
    defaultText: "10000",
    parse: wholeNumber(0, 600_000),
  },
  /**
   * Never a flag: a command line shows in `ps`. Unset, the token is read from `<data>/admin-token`, and
   * generated there when missing (config/admin-token.ts).
   */
  adminToken: {
    flag: null,
    env: "BOXOFFICE_ADMIN_TOKEN",
    description:
      "admin bearer token (16 to 512 printable ASCII characters); unset: <data>/admin-token, generated when missing",
    defaultText: "",
    parse: (value: string, name: string): string | null => {
      if (value === "") return null;
      if (!/^[\x21-\x7E]{16,512}$/.test(value)) {
        throw new ConfigError(`${name} must be 16 to 512 printable ASCII characters`);
      }
      return value;
    },
  },
  /**
   * Never a flag, as the admin token. Unset, it is read from `<data>/signing-secret`, and generated there
   * when missing (config/signing-secret.ts). Instances on several hosts must all be given the same one.
   */
  signingSecret: {
    flag: null,
    env: "BOXOFFICE_SIGNING_SECRET",
    description:
      "key for what instances sign for buyers (order secrets, waiting-room passes), 32 to 512 printable ASCII characters; unset: <data>/signing-secret, generated when missing",
    defaultText: "",
    parse: (value: string, name: string): string | null => {
      if (value === "") return null;
      if (!/^[\x21-\x7E]{32,512}$/.test(value)) {
        throw new ConfigError(`${name} must be 32 to 512 printable ASCII characters`);
      }
      return value;
    },
  },
  /** How buyers prove who they are (config/buyer-auth.ts turns the buyerJwt* settings into a verifier's key). */
  buyerAuth: {
    flag: "buyer-auth",
    env: "BOXOFFICE_BUYER_AUTH",
    description:
      "none: the customerId in the body is taken as sent; jwt: buyers send Authorization: Bearer <JWT> and its sub is the customer",
    defaultText: "none",
    parse: oneOf<"none" | "jwt">("none", "jwt"),
  },
  /** Never a flag: a command line shows in `ps`. */
  buyerJwtSecret: {
    flag: null,
    env: "BOXOFFICE_BUYER_JWT_SECRET",
    description:
      "--buyer-auth jwt with HS256: the secret shared with the operator's login, 32 to 512 printable ASCII characters",
    defaultText: "",
    parse: (value: string, name: string): string | null => {
      if (value === "") return null;
      if (!/^[\x21-\x7E]{32,512}$/.test(value)) {
        throw new ConfigError(`${name} must be 32 to 512 printable ASCII characters`);
      }
      return value;
    },
  },
  buyerJwtPublicKey: {
    flag: "buyer-jwt-public-key",
    env: "BOXOFFICE_BUYER_JWT_PUBLIC_KEY",
    description: "--buyer-auth jwt with RS256 or ES256: a PEM file with the login's public key",
    defaultText: "",
    valueName: "file",
    parse: optionalPath,
  },
  buyerJwtJwks: {
    flag: "buyer-jwt-jwks",
    env: "BOXOFFICE_BUYER_JWT_JWKS",
    description: "--buyer-auth jwt with RS256 or ES256: a JWKS file (JSON) with the login's public keys",
    defaultText: "",
    valueName: "file",
    parse: optionalPath,
  },
  buyerJwtIssuer: {
    flag: "buyer-jwt-issuer",
    env: "BOXOFFICE_BUYER_JWT_ISSUER",
    description: "--buyer-auth jwt: the iss every buyer token must carry (required)",
    defaultText: "",
    parse: optionalText,
  },
  buyerJwtAudience: {
    flag: "buyer-jwt-audience",
    env: "BOXOFFICE_BUYER_JWT_AUDIENCE",
    description: "--buyer-auth jwt: the aud every buyer token must carry (required)",
    defaultText: "",
    parse: optionalText,
  },
  buyerJwtClockToleranceSeconds: {
    flag: "buyer-jwt-clock-tolerance-seconds",
    env: "BOXOFFICE_BUYER_JWT_CLOCK_TOLERANCE_SECONDS",
    description: "--buyer-auth jwt: leeway for exp and nbf between the login's clock and ours",
    defaultText: "30",
    parse: wholeNumber(0, 300),
  },
} satisfies Record<string, Setting<unknown>>;

/** The settings of `boxoffice migrate`: the store's, from the same flags and variables as the server's. */
export const MIGRATE_SETTINGS = {
  dataDir: SERVER_SETTINGS.dataDir,
  store: SERVER_SETTINGS.store,
  layout: SERVER_SETTINGS.layout,
  durability: SERVER_SETTINGS.durability,
  logLevel: SERVER_SETTINGS.logLevel,
} satisfies Record<string, Setting<unknown>>;

/**
 * The typed, frozen configuration of one instance; each field is described in SERVER_SETTINGS, with the
 * lock scope resolved (lockScopeFor).
 */
export type ServerConfig = Omit<SettingsOf<typeof SERVER_SETTINGS>, "lockScope"> & {
  readonly lockScope: LockScope;
};

/** Builds the frozen config: flags win over BOXOFFICE_* variables, which win over defaults. */
export function loadServerConfig(flags: FlagValues, env: NodeJS.ProcessEnv = process.env): ServerConfig {
  const settings = readSettings(SERVER_SETTINGS, flags, env);
  const config = Object.freeze({ ...settings, lockScope: lockScopeFor(settings) });
  checkBuyerAuth(config);
  return config;
}

/**
 * `--lock-scope auto` (the default) is the seed's pairing of the two designs: one lock for one database
 * file (the single SQLite layout, whose file SQLite lets one writer change at a time, so a lock per event
 * would only add its cost: 2,679–3,105 against 3,645–3,825 orders/s over 50 events in docs/benchmarks.md),
 * a lock per event for a file per event and for PostgreSQL, where different events sell at once.
 */
export function lockScopeFor(settings: {
  lockScope: LockScope | "auto";
  store: string;
  layout: StoreLayout;
}): LockScope {
  if (settings.lockScope !== "auto") return settings.lockScope;
  return settings.store === "sqlite" && settings.layout === "single" ? "global" : "event";
}

/** The buyerJwt* settings must make one verifier with --buyer-auth jwt, and are an error without it. */
function checkBuyerAuth(config: ServerConfig): void {
  const keys = [
    config.buyerJwtSecret === null ? null : "BOXOFFICE_BUYER_JWT_SECRET",
    config.buyerJwtPublicKey === null ? null : "--buyer-jwt-public-key",
    config.buyerJwtJwks === null ? null : "--buyer-jwt-jwks",
  ].filter((name): name is string => name !== null);
  if (config.buyerAuth === "none") {
    if (keys.length > 0)
      throw new ConfigError(`${keys[0]} is set but --buyer-auth is none; set --buyer-auth jwt`);
    return;
  }
  if (keys.length !== 1) {
    throw new ConfigError(
      "--buyer-auth jwt needs exactly one key: BOXOFFICE_BUYER_JWT_SECRET (HS256), --buyer-jwt-public-key or --buyer-jwt-jwks (RS256/ES256)" +
        (keys.length > 1 ? `, not ${keys.join(" and ")}` : ""),
    );
  }
  if (config.buyerJwtIssuer === null) throw new ConfigError("--buyer-auth jwt needs --buyer-jwt-issuer");
  if (config.buyerJwtAudience === null) throw new ConfigError("--buyer-auth jwt needs --buyer-jwt-audience");
}
