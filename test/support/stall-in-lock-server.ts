/**
 * For the fault matrix's pause fault only: runs the `boxoffice` CLI with every store's `execute` and
 * `executeMany` wrapped so that, once armed, the next batch that carries a lock guard stops the whole
 * process (SIGSTOP to itself) after its lock was granted and before the store writes anything — as a GC
 * pause or a frozen VM would catch a holder. The test then knows, rather than hopes, that the victim
 * holds the lock while it is stopped. Armed by creating the file named by BOXOFFICE_TEST_STALL_FILE; the
 * batch that stalls removes it and writes `<file>.stalled` first, so one arming stalls one batch. Nothing
 * in the product's code knows about this; the wrap is made here, on the store classes.
 */
import { unlinkSync, writeFileSync } from "node:fs";
import type { Command } from "../../src/domain/sale.js";
import type { WriteGuard } from "../../src/domain/write-guard.js";
import type { EventBatch, Store } from "../../src/store/store.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";

const armFile = process.env.BOXOFFICE_TEST_STALL_FILE;

function stallIfArmed(guarded: boolean): void {
  if (armFile === undefined || !guarded) return;
  try {
    unlinkSync(armFile); // only one batch can take the arming
  } catch {
    return;
  }
  writeFileSync(`${armFile}.stalled`, String(Date.now()));
  process.kill(process.pid, "SIGSTOP");
}

for (const store of [SqliteStore, PostgresStore]) {
  const execute = store.prototype.execute;
  store.prototype.execute = function (
    this: InstanceType<typeof store>,
    eventId: string,
    commands: readonly Command[],
    guard: WriteGuard | null,
    now: Date,
  ) {
    stallIfArmed(guard !== null);
    return execute.call(this as never, eventId, commands, guard, now);
  };
  const prototype = store.prototype as Store;
  const executeMany = prototype.executeMany;
  if (executeMany === undefined) continue;
  prototype.executeMany = function (this: Store, batches: readonly EventBatch[], now: Date) {
    stallIfArmed(batches.some((batch) => batch.guard !== null));
    return executeMany.call(this, batches, now);
  };
}

await import("../../src/cli/main.js");
