/**
 * The per-event layout's hold-deadline hints (the catalog's hold_deadlines table, which tells the hold
 * sweeper which event files to open), against real processes and real files: a busy catalog never turns a
 * committed batch into an error, a hold whose hint was lost is still found and expired, and sellers and
 * sweepers killed at any moment leave every active hold with a hint no later than its expiry.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { planEvent } from "../../src/domain/event.js";
import type { EventPlan } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import type { Command, Hold, Outcome } from "../../src/domain/sale.js";
import { HoldSweeper } from "../../src/sales/hold-sweeper.js";
import { StoreUnavailableError } from "../../src/store/store-errors.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { ForkedChild } from "../support/forked-child.js";
import type { HintChildMessage, HintChildRequest, HintChildSetup } from "../support/hint-child.js";

const CHILD = fileURLToPath(new URL("../support/hint-child.js", import.meta.url));
type HintChild = ForkedChild<HintChildRequest, HintChildMessage>;

const dirs: string[] = [];
const children: HintChild[] = [];
after(async () => {
  await Promise.all(children.map((child) => child.stop()));
  dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true }));
});

function tempDir(name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `boxoffice-hints-${name}-`));
  dirs.push(dir);
  return dir;
}

async function child(dir: string, rescanEventsPerSweep = 0): Promise<HintChild> {
  const setup: HintChildSetup = { dir, rescanEventsPerSweep };
  const started = await ForkedChild.start<HintChildRequest, HintChildMessage>(CHILD, setup);
  children.push(started);
  return started;
}

async function openStore(dir: string, rescanEventsPerSweep?: number): Promise<SqliteStore> {
  const store = new SqliteStore(
    { kind: "sqlite", dir, layout: "per-event", durability: "full", maxOpenEvents: 8 },
    rescanEventsPerSweep === undefined ? {} : { rescanEventsPerSweep },
  );
  await store.init();
  return store;
}

/** The hint rows, read straight from catalog.db. */
function hints(dir: string): Map<string, number> {
  const db = new Database(join(dir, "catalog.db"), { readonly: true });
  try {
    const rows = db.prepare("SELECT event_id, earliest_ms FROM hold_deadlines").all() as {
      event_id: string;
      earliest_ms: number;
    }[];
    return new Map(rows.map((r) => [r.event_id, r.earliest_ms]));
  } finally {
    db.close();
  }
}

/** The earliest active hold of an event file, read straight from it. */
function earliestActiveHold(dir: string, eventId: string): number | null {
  const db = new Database(join(dir, "events", `${eventId}.db`), { readonly: true });
  try {
    const row = db
      .prepare("SELECT min(expires_at_ms) AS earliest FROM holds WHERE status = 'active'")
      .get() as { earliest: number | null };
    return row.earliest;
  } finally {
    db.close();
  }
}

const hold = (customerId: string, quantity: number, ttlSeconds: number): Command => ({
  type: "hold",
  customerId,
  selection: { quantity, seats: null },
  ttlSeconds,
  idempotency: null,
});

function heldValue(outcome: Outcome | undefined): Hold {
  assert.ok(outcome?.ok, `expected a hold, got ${JSON.stringify(outcome)}`);
  return outcome.value as Hold;
}

async function createGeneral(store: SqliteStore, capacity: number): Promise<EventPlan> {
  const plan = planEvent({ name: "Hints", capacity, maxPerCustomer: capacity }, newEventId(), new Date());
  await store.createEvent(plan);
  return plan;
}

describe("sqlite (per-event) hold-deadline hints", () => {
  it("a batch answers success while another process holds the catalog's write lock; its hint follows at the next sweep", async () => {
    const dir = tempDir("busy");
    const store = await openStore(dir, 0);
    const reported: unknown[] = [];
    store.onBookkeepingError = (error) => reported.push(error);
    const plan = await createGeneral(store, 10);
    const locker = await child(dir);
    await locker.run({ op: "lock-catalog" });

    const now = new Date();
    const outcomes = await store.execute(
      plan.id,
      [
        hold("a", 2, 60),
        {
          type: "purchase",
          customerId: "b",
          selection: { quantity: 3, seats: null },
          idempotency: null,
        },
      ],
      null,
      now,
    );
    const held = heldValue(outcomes[0]);
    assert.ok(outcomes[1]?.ok, "the purchase in the same batch is answered too");
    assert.deepEqual(
      { sold: (await store.getEvent(plan.id))?.sold, held: (await store.getEvent(plan.id))?.held },
      { sold: 3, held: 2 },
      "the batch committed",
    );
    assert.equal(store.bookkeepingFailures, 1);
    assert.ok(reported[0] instanceof StoreUnavailableError, `reported ${String(reported[0])}`);
    assert.equal(hints(dir).get(plan.id), undefined, "the catalog was locked: no hint yet");

    await locker.run({ op: "unlock-catalog" });
    assert.equal(await store.expireHolds(now, 100), 0);
    assert.equal(hints(dir).get(plan.id), Date.parse(held.expiresAt), "the sweep wrote the hint it owed");
    assert.equal(await store.expireHolds(new Date(Date.parse(held.expiresAt) + 1), 100), 1);
    assert.equal((await store.getEvent(plan.id))?.held, 0);
    assert.equal(hints(dir).get(plan.id), undefined, "no active hold is left: no hint either");
    await store.close();
  });

  it("a buyer killed after its commit, its hint lost to a locked catalog: it was answered, and another instance's sweeper still gives its seats back", async () => {
    const dir = tempDir("killed");
    const store = await openStore(dir);
    const plan = planEvent(
      { name: "Seated", seating: { sections: [{ name: "A", rows: 1, seatsPerRow: 10 }] } },
      newEventId(),
      new Date(),
    );
    await store.createEvent(plan);
    const buyer = await child(dir);
    const locker = await child(dir);
    await locker.run({ op: "lock-catalog" });
    const answer = await buyer.run({
      op: "hold",
      eventId: plan.id,
      seats: [["A-1-1", "A-1-2"], ["A-1-3"]],
      ttlSeconds: 2,
    });
    // The buyer dies right after answering, before any sweep of its own could write the hint it owes.
    await buyer.stop();
    await locker.run({ op: "unlock-catalog" });
    await locker.stop();

    assert.equal(answer.error, undefined, "the committed batch was not answered with an error");
    const holds = (answer.outcomes ?? []).map(heldValue);
    assert.equal(holds.length, 2);
    assert.ok((answer.bookkeepingFailures ?? 0) >= 1, "the buyer could not write the hint");
    assert.equal(hints(dir).get(plan.id), undefined, "the hint was lost");
    assert.equal((await store.getEvent(plan.id))?.held, 3);

    const latest = Math.max(...holds.map((h) => Date.parse(h.expiresAt)));
    const later = () => new Date(latest + 1000);
    const hintsOnly = await openStore(dir, 0);
    const blind = new HoldSweeper({
      store: hintsOnly,
      intervalMs: 1000,
      limit: 100,
      pruneIntervalMs: 1e9,
      now: later,
    });
    assert.equal(await blind.sweepOnce(), 0, "without the rescan nothing would ever sweep these holds");
    await hintsOnly.close();

    const sweeper = new HoldSweeper({
      store,
      intervalMs: 1000,
      limit: 100,
      pruneIntervalMs: 1e9,
      now: later,
    });
    let expired = 0;
    for (let sweep = 0; sweep < 5 && expired < 2; sweep++) expired += await sweeper.sweepOnce();
    assert.equal(expired, 2);
    for (const h of holds) assert.equal((await store.getHold(h.id))?.status, "expired");
    const event = await store.getEvent(plan.id);
    assert.deepEqual({ held: event?.held, available: event?.available }, { held: 0, available: 10 });
    const seats = (await store.getSeatMap(plan.id))?.sections.flatMap((s) => s.rows.flatMap((r) => r.seats));
    assert.ok(
      seats?.every((s) => s.status === "available"),
      "every seat is back in stock",
    );
    await store.close();
  });

  it("a sweeper that dies after claiming a due hint delays its holds, never loses them", async () => {
    const dir = tempDir("claim");
    const store = await openStore(dir, 0);
    const plan = await createGeneral(store, 10);
    const now = Date.now();
    const held = heldValue((await store.execute(plan.id, [hold("a", 1, 30)], null, new Date(now)))[0]);
    const dueMs = Date.parse(held.expiresAt);
    // What a sweeper leaves when it dies right after its claim: the hint pushed 30 s ahead.
    const claimer = new Database(join(dir, "catalog.db"));
    const claimed = claimer
      .prepare("UPDATE hold_deadlines SET earliest_ms = ? WHERE event_id = ? AND earliest_ms = ?")
      .run(dueMs + 30_000, plan.id, dueMs).changes;
    claimer.close();
    assert.equal(claimed, 1);
    assert.equal(await store.expireHolds(new Date(dueMs + 1), 100), 0, "claimed by the dead sweeper");
    assert.equal(
      await store.expireHolds(new Date(dueMs + 30_001), 100),
      1,
      "due again once the claim ran out",
    );
    assert.equal((await store.getEvent(plan.id))?.held, 0);
    await store.close();
  });

  it("a hint for a hold that was refused is cleared by the sweep that finds nothing", async () => {
    const dir = tempDir("stale");
    const store = await openStore(dir, 0);
    const plan = await createGeneral(store, 1);
    const now = new Date();
    const [refused] = await store
      .execute(
        plan.id,
        [
          { type: "purchase", customerId: "a", selection: { quantity: 1, seats: null }, idempotency: null },
          hold("b", 1, 30),
        ],
        null,
        now,
      )
      .then((outcomes) => outcomes.slice(1));
    assert.equal(refused?.ok, false);
    assert.equal(refused?.ok === false && refused.refusal.code, "sold_out");
    assert.equal(hints(dir).get(plan.id), now.getTime() + 30_000, "written before the batch knew");
    assert.equal(await store.expireHolds(new Date(now.getTime() + 30_001), 100), 0);
    assert.equal(hints(dir).get(plan.id), undefined);
    await store.close();
  });

  it("sellers and sweepers in many processes, the sellers killed mid-sale: every active hold keeps a hint no later than its expiry", async () => {
    const dir = tempDir("churn");
    const store = await openStore(dir, 0);
    const plans = await Promise.all([0, 1, 2, 3].map(() => createGeneral(store, 1_000_000)));
    const eventIds = plans.map((p) => p.id);
    const sellers = await Promise.all([0, 1, 2].map(() => child(dir)));
    const sweepers = await Promise.all([0, 1].map(() => child(dir)));
    const sweeps = sweepers.map((s) => s.send({ op: "sweep" }));
    await Promise.all(sweepers.map((s, i) => s.next(sweeps[i] as number, "busy")));
    const owed: string[] = [];
    for (const seller of sellers) {
      seller.process.on("message", (message: HintChildMessage) => {
        if (message.event === "bookkeeping") owed.push(message.what);
      });
    }
    const churns = sellers.map((s) => s.send({ op: "churn", eventIds, ttlSeconds: 3 }));
    await Promise.all(sellers.map((s, i) => s.next(churns[i] as number, "busy")));
    await sleep(2500);
    // Sweepers finish their sweep (a claim they die with is the case above); sellers die mid-whatever.
    sweepers.forEach((s) => s.send({ op: "stop" }));
    await Promise.all(sweepers.map((s, i) => s.next(sweeps[i] as number, "done")));
    await Promise.all(sellers.map((s) => s.stop()));

    const endMs = Date.now();
    const hinted = hints(dir);
    let active = 0;
    for (const eventId of eventIds) {
      const earliest = earliestActiveHold(dir, eventId);
      if (earliest === null) continue;
      active++;
      const hint = hinted.get(eventId);
      // Allowed: a sweeper's claim its settling could not replace (the catalog was busy), due again in
      // 30 s; a hint a killed seller failed to write and told about (the rescan's work). Nothing else.
      const claim = hint !== undefined && hint > endMs + 10_000;
      const told = owed.some((what) => what.includes(eventId));
      assert.ok(
        (hint !== undefined && hint <= earliest) || claim || told,
        `event ${eventId}: hint ${hint}, earliest hold ${earliest}`,
      );
    }
    console.log(`churn: ${owed.length} failed hint writes told by the sellers`);
    assert.ok(active > 0, "the sellers left active holds");
    const rescanning = await openStore(dir);
    await rescanning.expireHolds(new Date(), 1); // the rescan repairs what a killed seller owed
    await rescanning.close();
    const expired = await store.expireHolds(new Date(Date.now() + 60_000), 1_000_000);
    assert.ok(expired > 0);
    for (const eventId of eventIds) assert.equal((await store.getEvent(eventId))?.held, 0, eventId);
    assert.equal(hints(dir).size, 0);
    await store.close();
  });
});
