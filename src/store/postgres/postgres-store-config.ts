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
  /**
   * "apply" (the default): init() applies pending migrations. "check": init() only reads the schema's
   * version and throws SchemaBehindError when it is behind, so the instance can run as a role that
   * cannot change the schema (`boxoffice migrate` applies them, as the owner).
   */
  migrations?: "apply" | "check";
}

const DEFAULT_SCHEMA = "boxoffice";
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** Where the store's tables are: the URL the driver gets (without `schema`) and the schema's name. */
export function postgresTarget(config: Pick<PostgresStoreConfig, "url" | "schema">): {
  connectionString: string;
  schema: string;
} {
  const url = new URL(config.url);
  const schema = config.schema ?? url.searchParams.get("schema") ?? DEFAULT_SCHEMA;
  if (!SCHEMA_NAME.test(schema)) throw new TypeError(`not a schema name: "${schema}"`);
  url.searchParams.delete("schema");
  return { connectionString: url.toString(), schema };
}
