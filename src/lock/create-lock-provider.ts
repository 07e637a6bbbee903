/**
 * Builds the configured lock provider. The core never names a concrete provider; heavy clients load
 * with a dynamic import() so the embedded default does not need them.
 */
import { join } from "node:path";
import { ConfigError } from "../domain/errors.js";
import type { LockProvider } from "./lock-provider.js";
import { NoneLock } from "./none/none-lock.js";

export type LockConfig =
  | { kind: "none" }
  /** `path` null: `locks.sqlite` in the data directory. `keyIdleMs`: see KEY_IDLE_MS (tests shorten it). */
  | { kind: "file"; path: string | null; keyIdleMs?: number }
  /** `url` null: the store's PostgreSQL URL. */
  | { kind: "postgres"; url: string | null }
  /** One URL: a single Redis; several: a Redlock quorum over independent servers. */
  | { kind: "redis"; urls: string[]; keyPrefix?: string; keyIdleMs?: number };

/** What the lock may borrow from the rest of the configuration. */
export interface LockContext {
  /** The data directory (for the file lock's default path). */
  dataDir?: string;
  /**
   * The store's PostgreSQL URL; null when the store is not PostgreSQL (then `--lock postgres` is refused:
   * its lock is taken inside the PostgreSQL store's transactions, and another store would ignore it).
   */
  storeUrl?: string | null;
}

function invalid(message: string): ConfigError {
  return new ConfigError(message);
}

/**
 * Parses the `--lock` value: `file`, `file:<path>`, `none`, `postgres`, `postgres://…`, or
 * `redis://h:p[,redis://h:p…]` (several servers: Redlock).
 */
export function parseLockSetting(value: string): LockConfig {
  const setting = value.trim();
  if (setting === "none") return { kind: "none" };
  if (setting === "file") return { kind: "file", path: null };
  if (setting.startsWith("file:")) {
    const path = setting.slice("file:".length);
    if (path === "") throw invalid(`lock "${value}": file: needs a path`);
    return { kind: "file", path };
  }
  if (setting === "postgres") return { kind: "postgres", url: null };
  if (/^postgres(ql)?:\/\//.test(setting)) return { kind: "postgres", url: setting };
  if (/^rediss?:\/\//.test(setting)) {
    const urls = setting.split(",").map((part) => part.trim());
    for (const url of urls) {
      let parsed: URL;
      try {
        parsed = new URL(url);
      } catch {
        throw invalid(`lock "${value}": "${url}" is not a URL`);
      }
      if (parsed.protocol !== "redis:" && parsed.protocol !== "rediss:") {
        throw invalid(`lock "${value}": every server must be redis://host:port`);
      }
    }
    if (new Set(urls).size !== urls.length) throw invalid(`lock "${value}": a server is listed twice`);
    return { kind: "redis", urls };
  }
  throw invalid(`unknown lock "${value}": use file, none, postgres or redis://host:port[,redis://…]`);
}

export async function createLockProvider(
  config: LockConfig,
  context: LockContext = {},
): Promise<LockProvider> {
  switch (config.kind) {
    case "none":
      return new NoneLock();
    case "file": {
      const path =
        config.path ?? (context.dataDir === undefined ? null : join(context.dataDir, "locks.sqlite"));
      if (path === null) throw invalid("the file lock needs a data directory or a path");
      const { FileLock } = await import("./file/file-lock.js");
      return new FileLock({ path, keyIdleMs: config.keyIdleMs });
    }
    case "postgres": {
      if (context.storeUrl === null) {
        throw invalid(
          "--lock postgres locks inside the PostgreSQL store's transactions: use it with --store postgres://…",
        );
      }
      const url = config.url ?? context.storeUrl ?? null;
      if (url === null)
        throw invalid("--lock postgres needs a PostgreSQL store (--store postgres://…) or a URL");
      const { PostgresLock } = await import("./postgres/postgres-lock.js");
      return new PostgresLock({ url });
    }
    case "redis": {
      const { RedisLock } = await import("./redis/redis-lock.js");
      return new RedisLock({ urls: config.urls, keyPrefix: config.keyPrefix, keyIdleMs: config.keyIdleMs });
    }
  }
}
