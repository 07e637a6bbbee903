/**
 * Event files written by a build before migration 005 (which dropped the index (event_id, id) on orders,
 * the order list reading an event's orders as a range of the primary key instead): a store of this build
 * migrates them when it opens them and lists every event's orders as before, in both layouts.
 */
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, it } from "node:test";
import Database from "better-sqlite3";
import { planEvent } from "../../../../src/domain/event.js";
import { newEventId } from "../../../../src/domain/ids.js";
import type { Command } from "../../../../src/domain/sale.js";
import { SqliteStore } from "../../../../src/store/sqlite/sqlite-store.js";

const T0 = new Date("2026-12-01T10:00:00.000Z");

const purchase = (customerId: string): Command => ({
  type: "purchase",
  customerId,
  selection: { quantity: 1, seats: null },
  idempotency: null,
});

/** The event's order ids as the order list gives them, page after page of 3. */
async function listedIds(store: SqliteStore, eventId: string): Promise<string[]> {
  const ids: string[] = [];
  let cursor: string | null = null;
  for (;;) {
    const page = await store.listOrders(eventId, {}, { limit: 3, cursor });
    assert.ok(page, `event ${eventId} has a page`);
    ids.push(...page.orders.map((order) => order.id));
    if (page.nextCursor === null) return ids;
    cursor = page.nextCursor;
  }
}

/** The files that hold the events' sales: the one file, or a file per event. */
function salesFiles(dir: string, layout: "single" | "per-event"): string[] {
  if (layout === "single") return [join(dir, "boxoffice.db")];
  return readdirSync(join(dir, "events"))
    .filter((name) => name.endsWith(".db"))
    .map((name) => join(dir, "events", name));
}

for (const layout of ["single", "per-event"] as const) {
  describe(`SQLite (${layout}): files from before migration 005`, () => {
    it("are migrated when opened, and every event's orders list as before", async () => {
      const dir = mkdtempSync(join(tmpdir(), `boxoffice-upgrade-${layout}-`));
      const config = {
        kind: "sqlite" as const,
        dir,
        layout,
        durability: "normal" as const,
        maxOpenEvents: 8,
      };
      try {
        const before = new SqliteStore(config);
        await before.init();
        const events: string[] = [];
        const sold = new Map<string, string[]>();
        for (let e = 0; e < 3; e++) {
          const plan = planEvent({ name: `Night ${e}`, capacity: 100 }, newEventId(T0.getTime()), T0);
          await before.createEvent(plan);
          events.push(plan.id);
        }
        // Interleaved, so that the events' orders are not each one run of inserts.
        for (let round = 0; round < 4; round++) {
          for (const eventId of events) {
            const [outcome] = await before.execute(eventId, [purchase(`c${round}`)], null, T0);
            assert.ok(outcome?.ok && outcome.value !== null, "sold");
            sold.set(eventId, [...(sold.get(eventId) ?? []), outcome.value.id]);
          }
        }
        const listedBefore = new Map<string, string[]>();
        for (const eventId of events) listedBefore.set(eventId, await listedIds(before, eventId));
        await before.close();

        // What a build before 005 left: the index, and the files at event version 4.
        const files = salesFiles(dir, layout);
        assert.equal(files.length, layout === "single" ? 1 : 3);
        for (const file of files) {
          const db = new Database(file);
          db.exec("CREATE INDEX orders_by_event ON orders (event_id, id)");
          db.prepare("UPDATE schema_versions SET version = 4 WHERE role = 'event'").run();
          db.close();
        }

        const after = new SqliteStore(config);
        await after.init();
        try {
          for (const eventId of events) {
            const listed = await listedIds(after, eventId);
            assert.deepEqual(listed, listedBefore.get(eventId));
            assert.deepEqual([...listed].sort(), [...(sold.get(eventId) ?? [])].sort());
            assert.equal(listed.length, 4);
          }
        } finally {
          await after.close();
        }
        for (const file of files) {
          const db = new Database(file, { readonly: true });
          const index = db.prepare("SELECT 1 FROM sqlite_master WHERE name = 'orders_by_event'").get();
          const version = db.prepare("SELECT version FROM schema_versions WHERE role = 'event'").get() as {
            version: number;
          };
          db.close();
          assert.equal(index, undefined, `${file}: the index is dropped`);
          assert.equal(version.version, 5, `${file}: at event version 5`);
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });
  });
}
