import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { describeExecuteManyContract } from "./execute-many-contract.js";
import { describeStoreContract } from "./store-contract.js";
import { describeWebhookContract } from "./webhook-contract.js";

/** A store on a fresh directory, and another handle on the same files. */
function sqliteFixture(layout: "single" | "per-event", commitThreads: number | undefined) {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), `boxoffice-contract-${layout}-`));
    const config = {
      kind: "sqlite" as const,
      dir,
      layout,
      durability: "full" as const,
      maxOpenEvents: 8,
      commitThreads,
    };
    const store = new SqliteStore(config);
    await store.init();
    return {
      store,
      async openAnother() {
        const another = new SqliteStore(config);
        await another.init();
        return another;
      },
      async cleanup() {
        await store.close();
        rmSync(dir, { recursive: true, force: true });
      },
    };
  };
}

// The per-event layout commits executeMany's parts in its commit threads by default, and with
// commitThreads 0 one after another in the calling thread: both are held to the contracts.
for (const [layout, commitThreads] of [
  ["single", undefined],
  ["per-event", undefined],
  ["per-event", 0],
] as const) {
  const name = commitThreads === 0 ? `${layout}, no commit threads` : layout;
  describeStoreContract(`sqlite (${name})`, sqliteFixture(layout, commitThreads));
  describeExecuteManyContract(`sqlite (${name})`, sqliteFixture(layout, commitThreads), {
    fencesShared: layout === "single",
  });
}

for (const layout of ["single", "per-event"] as const) {
  describeWebhookContract(`sqlite (${layout})`, async () => {
    const dir = mkdtempSync(join(tmpdir(), `boxoffice-webhooks-${layout}-`));
    const config = { kind: "sqlite" as const, dir, layout, durability: "normal" as const, maxOpenEvents: 8 };
    const store = new SqliteStore(config);
    await store.init();
    const others: SqliteStore[] = [];
    return {
      store,
      async openAnother() {
        const another = new SqliteStore(config);
        await another.init();
        others.push(another);
        return another;
      },
      async cleanup() {
        await Promise.all([store, ...others].map((s) => s.close()));
        rmSync(dir, { recursive: true, force: true });
      },
    };
  });
}
