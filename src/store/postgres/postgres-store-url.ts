/**
 * Turns a `--store` / `BOXOFFICE_STORE` value such as
 *
 *   postgres://boxoffice@db.internal:5432/boxoffice?schema=boxoffice&pool=10&statement_timeout_ms=5000
 *
 * into the store's config. The tuning parameters are ours and are removed from the URL before it reaches
 * the driver; everything else (user, password, host, port, database, sslmode…) passes through to `pg`.
 */
import { BoxofficeError } from "../../domain/errors.js";
import type { PostgresStoreConfig } from "./postgres-store.js";

export const POSTGRES_STORE_DEFAULTS = {
  poolSize: 10,
  statementTimeoutMs: 5000,
  connectTimeoutMs: 2000,
} as const;

/** True for postgres:// and postgresql:// URLs. */
export function isPostgresUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//i.test(value);
}

function wholeNumber(url: URL, name: string, fallback: number, min: number, max: number): number {
  const text = url.searchParams.get(name);
  url.searchParams.delete(name);
  if (text === null) return fallback;
  const value = Number(text);
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new BoxofficeError(
      "INVALID_CONFIG",
      `store URL: ${name} must be a whole number from ${min} to ${max}`,
    );
  }
  return value;
}

export function postgresStoreConfigFromUrl(value: string): PostgresStoreConfig & { kind: "postgres" } {
  if (!isPostgresUrl(value)) throw new BoxofficeError("INVALID_CONFIG", "not a postgres:// URL");
  const url = new URL(value);
  const poolSize = wholeNumber(url, "pool", POSTGRES_STORE_DEFAULTS.poolSize, 1, 1000);
  const statementTimeoutMs = wholeNumber(
    url,
    "statement_timeout_ms",
    POSTGRES_STORE_DEFAULTS.statementTimeoutMs,
    1,
    3_600_000,
  );
  const connectTimeoutMs = wholeNumber(
    url,
    "connect_timeout_ms",
    POSTGRES_STORE_DEFAULTS.connectTimeoutMs,
    1,
    600_000,
  );
  return { kind: "postgres", url: url.toString(), poolSize, statementTimeoutMs, connectTimeoutMs };
}

/**
 * The store URL as it may be shown (logs, /ready, metrics labels): the password replaced by "***" and
 * boxoffice's own parameters kept, so that an operator can see which database and schema an instance uses.
 */
export function redactPostgresUrl(value: string): string {
  const url = new URL(value);
  if (url.password !== "") url.password = "***";
  return url.toString();
}
