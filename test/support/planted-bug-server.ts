/**
 * A planted bug, for the fault matrix's own test only: runs the `boxoffice` CLI with every store's
 * `execute` (and `executeMany`, where a store has it) wrapped so that the idempotency key is dropped
 * before the store sees it. The store then keeps no first answer: a replayed key (a client's retry after
 * a timeout, a 503 or a double click) buys again. Nothing in the product's code knows about this; the
 * wrap is made here, on the store classes, before the CLI starts.
 */
import type { Command } from "../../src/domain/sale.js";
import type { WriteGuard } from "../../src/domain/write-guard.js";
import type { EventBatch, Store } from "../../src/store/store.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";

const forgetful = (commands: readonly Command[]): Command[] =>
  commands.map((command) => ("idempotency" in command ? { ...command, idempotency: null } : command));

for (const store of [SqliteStore, PostgresStore]) {
  const execute = store.prototype.execute;
  store.prototype.execute = function (
    this: InstanceType<typeof store>,
    eventId: string,
    commands: readonly Command[],
    guard: WriteGuard | null,
    now: Date,
  ) {
    return execute.call(this as never, eventId, forgetful(commands), guard, now);
  };
  const prototype = store.prototype as Store;
  const executeMany = prototype.executeMany;
  if (executeMany === undefined) continue;
  prototype.executeMany = function (this: Store, batches: readonly EventBatch[], now: Date) {
    const without = batches.map((batch) => ({ ...batch, commands: forgetful(batch.commands) }));
    return executeMany.call(this, without, now);
  };
}

await import("../../src/cli/main.js");
