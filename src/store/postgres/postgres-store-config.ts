/** The PostgreSQL store's configuration: in its own folder, so that nothing here imports the factory above it. */

export interface PostgresStoreConfig {
  /** postgres://user@host:port/db; an optional `?schema=name` picks the schema (default "boxoffice"). */
  url: string;
  /** Connections this instance keeps at most. */
  poolSize: number;
  /** Server-side limit on each statement (`statement_timeout` of the transaction); a stuck one ends in 503. */
  statementTimeoutMs: number;
  /** How long to wait for a free pooled connection, or for a new one, before StoreUnavailableError. */
  connectTimeoutMs?: number;
  /** The schema holding the tables; overrides `?schema=` in the URL. */
  schema?: string;
}
