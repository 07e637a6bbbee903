/**
 * SQLite-specific guarantees the contract cannot show from one process: several OS processes selling
 * from one data directory with no lock at all never oversell and never sell a seat twice; and a
 * directory with 10,000 events works with a bounded number of open files per process.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { planEvent } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import {
  assertExactSellout,
  assertQuotasHold,
  assertSeatsSoldOnce,
  TYPED_EVENT,
} from "../support/sales-checks.js";

const run = promisify(execFile);
const BUYER = fileURLToPath(new URL("../support/store-buyer.js", import.meta.url));
const OPENER = fileURLToPath(new URL("../support/store-opener.js", import.meta.url));
const dirs: string[] = [];
after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

function tempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `boxoffice-${name}-`));
  dirs.push(dir);
  return dir;
}

for (const layout of ["single", "per-event"] as const) {
  describe(`sqlite (${layout}) across processes, no lock`, () => {
    it("8 processes opening one fresh data directory at once all start", async () => {
      const dir = tempDir(`open-${layout}`);
      const results = await Promise.all(
        Array.from({ length: 8 }, () => run(process.execPath, [OPENER, dir, layout])),
      );
      assert.deepEqual(
        results.map((r) => r.stdout.trim()),
        Array(8).fill("ok"),
      );
    });

    it("4 processes, 1,000 purchases of 1-4 tickets, capacity 500: exactly 500 sold", async () => {
      const dir = tempDir(`procs-${layout}`);
      const store = new SqliteStore({ kind: "sqlite", dir, layout, durability: "full", maxOpenEvents: 8 });
      await store.init();
      const plan = planEvent({ name: "Hot", capacity: 500, maxPerCustomer: 8 }, newEventId(), new Date());
      await store.createEvent(plan);
      const results = await Promise.all(
        [0, 1, 2, 3].map(() =>
          run(process.execPath, [BUYER, dir, layout, plan.id, "25", "10", "general", "0"]),
        ),
      );
      const parsed = results.map(
        (r) => JSON.parse(r.stdout) as { sold: number; refused: Record<string, number>; orders: string[] },
      );
      await assertExactSellout(store, plan.id, 500, {
        sold: parsed.reduce((n, p) => n + p.sold, 0),
        orderIds: parsed.flatMap((p) => p.orders),
        refusedCodes: parsed.flatMap((p) => Object.keys(p.refused)),
      });
      await store.close();
    });

    it("4 processes buying three ticket types at once: no quota and not the capacity passed", async () => {
      const dir = tempDir(`typed-${layout}`);
      const store = new SqliteStore({ kind: "sqlite", dir, layout, durability: "full", maxOpenEvents: 8 });
      await store.init();
      const plan = planEvent(TYPED_EVENT, newEventId(), new Date());
      await store.createEvent(plan);
      const results = await Promise.all(
        [0, 1, 2, 3].map(() => run(process.execPath, [BUYER, dir, layout, plan.id, "15", "8", "typed", "0"])),
      );
      const parsed = results.map(
        (r) => JSON.parse(r.stdout) as { sold: number; refused: Record<string, number>; orders: string[] },
      );
      await assertQuotasHold(store, plan.id, {
        sold: parsed.reduce((n, p) => n + p.sold, 0),
        orderIds: parsed.flatMap((p) => p.orders),
        refusedCodes: parsed.flatMap((p) => Object.keys(p.refused)),
      });
      await store.close();
    });

    it("4 processes with overlapping seat requests: no seat in two orders", async () => {
      const dir = tempDir(`seats-${layout}`);
      const store = new SqliteStore({ kind: "sqlite", dir, layout, durability: "full", maxOpenEvents: 8 });
      await store.init();
      const plan = planEvent(
        {
          name: "Seated",
          seating: { sections: [{ name: "A", rows: 1, seatsPerRow: 60 }] },
          maxPerCustomer: 8,
        },
        newEventId(),
        new Date(),
      );
      await store.createEvent(plan);
      const results = await Promise.all(
        [0, 1, 2, 3].map(() =>
          run(process.execPath, [BUYER, dir, layout, plan.id, "10", "10", "seated", "60"]),
        ),
      );
      const orderIds = results.flatMap((r) => (JSON.parse(r.stdout) as { orders: string[] }).orders);
      await assertSeatsSoldOnce(store, plan.id, orderIds);
      await store.close();
    });
  });
}

describe("sqlite (per-event) with 10,000 events", () => {
  it("serves every event while keeping at most maxOpenEvents files open", async () => {
    const dir = tempDir("many");
    const store = new SqliteStore({
      kind: "sqlite",
      dir,
      layout: "per-event",
      durability: "normal",
      maxOpenEvents: 32,
    });
    await store.init();
    const openFiles = () => readdirSync("/proc/self/fd").length;
    const before = openFiles();
    const ids: string[] = [];
    let peak = 0;
    for (let i = 0; i < 10_000; i++) {
      const plan = planEvent({ name: `E${i}`, capacity: 10 }, newEventId(), new Date());
      await store.createEvent(plan);
      ids.push(plan.id);
      if (i % 500 === 0) peak = Math.max(peak, openFiles());
    }
    for (let i = 0; i < ids.length; i += 97) {
      const id = ids[i] as string;
      const [outcome] = await store.execute(
        id,
        [{ type: "purchase", customerId: "c", selection: { quantity: 1, seats: null }, idempotency: null }],
        null,
        new Date(),
      );
      assert.ok(outcome?.ok);
      assert.equal((await store.getEvent(id))?.sold, 1);
      peak = Math.max(peak, openFiles());
    }
    const page = await store.listEvents({ limit: 100, cursor: null });
    assert.equal(page.events.length, 100);
    peak = Math.max(peak, openFiles());
    await store.close();
    // Each open SQLite file in WAL mode holds up to 3 descriptors (db, -wal, -shm).
    assert.ok(peak - before <= 3 * 32 + 6, `open files grew by ${peak - before}`);
    assert.equal(readdirSync(join(dir, "events")).filter((f) => f.endsWith(".db")).length, 10_000);
  });
});
