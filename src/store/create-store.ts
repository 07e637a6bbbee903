/**
 * Builds the configured store from a tagged config. Backends live in one folder each; PostgreSQL's
 * client loads with a dynamic import() so the embedded default does not need it.
 */
import type { Store } from "./store.js";

/**
 * Durability of a SQLite commit: "full" fsyncs the write-ahead log at every commit, so a confirmed sale
 * survives a crash of the machine; "normal" fsyncs only at checkpoints, so the last sales before a power
 * loss can vanish although they were answered 201 (a process crash loses nothing).
 */
export type SqliteDurability = "full" | "normal";

export type StoreConfig =
  | {
      kind: "sqlite";
      dir: string;
      layout: "single" | "per-event";
      durability: SqliteDurability;
      /** Per-event layout: how many event files one process keeps open at most. */
      maxOpenEvents: number;
    }
  | {
      kind: "postgres";
      /** postgres://user@host:port/db[?schema=name]; the schema defaults to "boxoffice". */
      url: string;
      /** Connections each instance keeps at most. */
      poolSize: number;
      /** Server-side limit on each statement; a stuck one ends in StoreUnavailableError (503). */
      statementTimeoutMs: number;
      /** How long to wait for a pooled connection before StoreUnavailableError. */
      connectTimeoutMs?: number;
    };

export async function createStore(config: StoreConfig): Promise<Store> {
  switch (config.kind) {
    case "sqlite": {
      const { SqliteStore } = await import("./sqlite/sqlite-store.js");
      return new SqliteStore(config);
    }
    case "postgres": {
      const { PostgresStore } = await import("./postgres/postgres-store.js");
      return new PostgresStore(config);
    }
  }
}
