/**
 * The per-event layout's outbox hints (the catalog's outbox_hints table, which tells the relay which
 * event files have outbox rows), on real files and with a real second process holding the catalog's
 * lock: a batch writes its hint before its commit; the relay moves the rows and removes the hint; a
 * busy catalog never fails a committed batch, and the hint follows at the next dispatch; a hint that is
 * lost altogether is found again by the sweeper's rescan, so no message is left behind.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { planEvent } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import type { Command } from "../../src/domain/sale.js";
import { newEndpointId } from "../../src/domain/webhook.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { ForkedChild } from "../support/forked-child.js";
import type { HintChildMessage, HintChildRequest, HintChildSetup } from "../support/hint-child.js";

const CHILD = fileURLToPath(new URL("../support/hint-child.js", import.meta.url));
const dirs: string[] = [];
const children: ForkedChild<HintChildRequest, HintChildMessage>[] = [];
after(async () => {
  await Promise.all(children.map((child) => child.stop()));
  dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true }));
});

function outboxHints(dir: string): Map<string, number> {
  const db = new Database(join(dir, "catalog.db"), { readonly: true });
  try {
    const rows = db.prepare("SELECT event_id, due_ms FROM outbox_hints").all() as {
      event_id: string;
      due_ms: number;
    }[];
    return new Map(rows.map((r) => [r.event_id, r.due_ms]));
  } finally {
    db.close();
  }
}

function outboxRows(dir: string, eventId: string): number {
  const db = new Database(join(dir, "events", `${eventId}.db`), { readonly: true });
  try {
    return (db.prepare("SELECT count(*) AS n FROM outbox").get() as { n: number }).n;
  } finally {
    db.close();
  }
}

const purchase = (customerId: string): Command => ({
  type: "purchase",
  customerId,
  selection: { quantity: 1, seats: null },
  idempotency: null,
});

async function setUp(rescanEventsPerSweep: number) {
  const dir = mkdtempSync(join(tmpdir(), "boxoffice-outbox-hints-"));
  dirs.push(dir);
  const store = new SqliteStore(
    { kind: "sqlite", dir, layout: "per-event", durability: "full", maxOpenEvents: 8 },
    { rescanEventsPerSweep },
  );
  await store.init();
  const endpointId = newEndpointId();
  await store.webhooks.createEndpoint({
    id: endpointId,
    url: "http://127.0.0.1:9/",
    eventTypes: [],
    enabled: true,
    createdAt: new Date().toISOString(),
    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  });
  const events = [];
  for (let i = 0; i < 3; i++) {
    const plan = planEvent({ name: `E${i}`, capacity: 100, maxPerCustomer: 100 }, newEventId(), new Date());
    await store.createEvent(plan);
    events.push(plan);
  }
  const delivered = async () =>
    (await store.webhooks.listDeliveries({ endpointId, status: null, limit: 100, cursor: null })).deliveries
      .length;
  return { dir, store, events, delivered };
}

describe("sqlite (per-event) outbox hints", () => {
  it("a batch writes its hint before its commit; the relay moves the rows and removes the hint; a refused command writes no message", async () => {
    const { dir, store, events, delivered } = await setUp(0);
    const [first, second] = events.map((plan) => ({ id: plan.id })) as [{ id: string }, { id: string }];
    await store.execute(first.id, [purchase("a"), purchase("b")], null, new Date());
    assert.deepEqual([...outboxHints(dir).keys()], [first.id]);
    assert.equal(outboxRows(dir, first.id), 2);
    assert.equal(await store.webhooks.dispatchOutbox(new Date(), 100), 2);
    assert.equal(outboxRows(dir, first.id), 0);
    assert.deepEqual([...outboxHints(dir).keys()], [], "an empty outbox has no hint");
    assert.equal(await delivered(), 2);
    // A refused batch writes no message; its hint, if any, only costs a look.
    await store.execute(second.id, [{ type: "cancel-order", orderId: "ord_x" }], null, new Date());
    assert.equal(outboxRows(dir, second.id), 0);
    await store.close();
  });

  it("a busy catalog does not fail a committed batch: its hint is written at the next dispatch", async () => {
    const { dir, store, events, delivered } = await setUp(0);
    const setup: HintChildSetup = { dir, rescanEventsPerSweep: 0 };
    const locker = await ForkedChild.start<HintChildRequest, HintChildMessage>(CHILD, setup);
    children.push(locker);
    const failures: string[] = [];
    store.onBookkeepingError = (_error, what) => failures.push(what);
    const plan = events[0] as { id: string };
    await locker.run({ op: "lock-catalog" });
    const [sold] = await store.execute(plan.id, [purchase("a")], null, new Date());
    assert.ok(sold?.ok, "the sale stands");
    assert.ok(
      failures.some((what) => what.includes("outbox hint")),
      failures.join("; "),
    );
    assert.equal(outboxRows(dir, plan.id), 1, "the message is committed with the sale");
    await locker.run({ op: "unlock-catalog" });
    assert.equal(outboxHints(dir).size, 0, "no hint yet");
    assert.equal(
      await store.webhooks.dispatchOutbox(new Date(), 100),
      1,
      "writes the hint it owes, then moves",
    );
    assert.equal(outboxHints(dir).size, 0);
    assert.equal(await delivered(), 1);
    await store.close();
  });

  it("a hint lost with its process is found again by the sweeper's rescan", async () => {
    const { dir, store, events, delivered } = await setUp(8);
    const plan = events[2] as { id: string };
    await store.execute(plan.id, [purchase("a"), purchase("b"), purchase("c")], null, new Date());
    // As if the process had died after a failed hint write: the rows are there, the hint is not.
    const catalog = new Database(join(dir, "catalog.db"));
    catalog.prepare("DELETE FROM outbox_hints").run();
    catalog.close();
    const fresh = new SqliteStore(
      { kind: "sqlite", dir, layout: "per-event", durability: "full", maxOpenEvents: 8 },
      { rescanEventsPerSweep: 8 },
    );
    await fresh.init();
    assert.equal(await fresh.webhooks.dispatchOutbox(new Date(), 100), 0, "no hint: the relay does not look");
    await fresh.expireHolds(new Date(), 100); // the sweep's rescan looks at every file of these 3 events
    assert.ok(outboxHints(dir).has(plan.id), "the rescan put the hint back");
    assert.equal(await fresh.webhooks.dispatchOutbox(new Date(Date.now() + 1), 100), 3);
    assert.equal(await delivered(), 3);
    await fresh.close();
    await store.close();
  });
});
