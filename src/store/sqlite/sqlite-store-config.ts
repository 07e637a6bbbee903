/** The SQLite store's configuration: in its own folder, so that nothing here imports the factory above it. */

/**
 * Durability of a SQLite commit: "full" fsyncs the write-ahead log at every commit, so a confirmed sale
 * survives a crash of the machine; "normal" fsyncs only at checkpoints, so the last sales before a power
 * loss can vanish although they were answered 201 (a process crash loses nothing).
 */
export type SqliteDurability = "full" | "normal";

export interface SqliteStoreConfig {
  kind: "sqlite";
  dir: string;
  layout: "single" | "per-event";
  durability: SqliteDurability;
  /** Per-event layout: how many event files one process keeps open at most. */
  maxOpenEvents: number;
  /**
   * "apply" (the default): files are brought to the latest schema when opened. "check": an existing file
   * whose schema is behind, or a missing catalog, throws SchemaBehindError (`boxoffice migrate` applies
   * the migrations); a new event's file is still created with the current schema.
   */
  migrations?: "apply" | "check";
  /**
   * Per-event layout: threads that commit the parts of a multi-event commit (Store.executeMany) to their
   * event files in parallel, each owning a shard of the files. 0: one after another in the calling
   * thread. Default 4.
   */
  commitThreads?: number;
}
