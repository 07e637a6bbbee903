/**
 * The `--store` / `BOXOFFICE_STORE` value of the PostgreSQL store: a libpq-style URL such as
 * `postgres://boxoffice@db.internal:5432/boxoffice?schema=boxoffice`. The driver takes it as it is, except
 * `schema`, which the store reads itself (PostgresStore). Pool size and statement timeout come from their
 * own settings (`--pg-pool-size`, `--pg-statement-timeout-ms`). It lives with the settings, not in the
 * store's folder, because it is about the setting's text: the server shows the configured store in its
 * logs without naming a backend's module.
 */

/** True for postgres:// and postgresql:// URLs. */
export function isPostgresUrl(value: string): boolean {
  return /^postgres(ql)?:\/\//i.test(value);
}

/**
 * The store URL as it may be shown (logs, /ready, metrics labels): the password replaced by "***", the
 * rest kept, so that an operator can see which database and schema an instance uses.
 */
export function redactPostgresUrl(value: string): string {
  const url = new URL(value);
  if (url.password !== "") url.password = "***";
  return url.toString();
}
