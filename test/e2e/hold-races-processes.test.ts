/**
 * Holds whose deadlines pass while 4 OS processes race on them, on every store (SQLite per-event, SQLite
 * single file, PostgreSQL): each process confirms, releases and buys the seats of the same holds,
 * cancels its orders, and sweeps overdue holds, with no lock at all (test/support/race-child.ts). The
 * deadlines are spread over the race, so that holds cross them while confirms from one process meet the
 * sweepers of the others.
 *
 * Then: every hold ended exactly once, as confirmed (by one confirm, before its deadline, with one order)
 * or expired (its tickets given back once: no sweep counted twice) or released; a confirm refused with
 * hold_expired is of an expired hold; the orders are exactly the ones answered; sold and held equal the
 * rows; no seat is in two live orders.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { planEvent } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import type { Hold, Order, Outcome } from "../../src/domain/sale.js";
import type { Store } from "../../src/store/store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { createTestPostgresStore } from "../support/postgres-test-store.js";
import { postgresSkip } from "../support/services.js";
import type { RaceHold, RaceMessage, RaceReport, RaceSetup, RaceStoreConfig } from "../support/race-child.js";

const CHILD = fileURLToPath(new URL("../support/race-child.js", import.meta.url));
const PROCESSES = 4;
/** Holds' deadlines are spread over this span of the race, which starts and ends a margin either side. */
const SPREAD_MS = 4000;
const MARGIN_MS = 600;
const TTL_SECONDS = 30;

const dirs: string[] = [];
after(() => dirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

async function allOrders(store: Store, eventId: string): Promise<Order[]> {
  const orders: Order[] = [];
  let cursor: string | null = null;
  do {
    const page = await store.listOrders(eventId, {}, { limit: 100, cursor });
    orders.push(...page!.orders);
    cursor = page!.nextCursor;
  } while (cursor !== null);
  return orders;
}

function runChild(
  setup: RaceSetup,
  index: number,
): { ready: Promise<void>; go(): void; report: Promise<RaceReport> } {
  const child = fork(CHILD, [JSON.stringify(setup), String(index)], {
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  let readied: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (readied = resolve));
  const report = new Promise<RaceReport>((resolve, reject) => {
    child.on("message", (message: RaceMessage) => {
      if (message.type === "ready") readied();
      else resolve(message.report);
    });
    child.on("exit", (code) => reject(new Error(`a race process exited with ${code} before its report`)));
  });
  report.catch(() => undefined);
  return { ready, go: () => child.send({ type: "go" }), report };
}

async function race(store: Store, config: RaceStoreConfig): Promise<void> {
  // Virtual time far from now, so that the holds' creation is after the events'.
  const base = Date.now() + 3_600_000;
  const seated = planEvent(
    {
      name: "Race seated",
      seating: { sections: [{ name: "A", rows: 2, seatsPerRow: 20 }] },
      maxPerOrder: 4,
      maxPerCustomer: 4,
    },
    newEventId(),
    new Date(),
  );
  const general = planEvent(
    { name: "Race GA", capacity: 60, maxPerOrder: 4, maxPerCustomer: 4 },
    newEventId(),
    new Date(),
  );
  await store.createEvent(seated);
  await store.createEvent(general);

  // 20 holds of 2 seats (every seat) and 20 of 3 tickets (the whole capacity), their deadlines interleaved.
  const holds: RaceHold[] = [];
  for (let i = 0; i < 40; i++) {
    const deadlineMs = base + Math.round((i * SPREAD_MS) / 39);
    const onSeated = i % 2 === 0;
    const k = Math.floor(i / 2);
    const seats = onSeated
      ? [`A-${1 + Math.floor(k / 10)}-${1 + 2 * (k % 10)}`, `A-${1 + Math.floor(k / 10)}-${2 + 2 * (k % 10)}`]
      : null;
    const eventId = onSeated ? seated.id : general.id;
    const [outcome] = (await store.execute(
      eventId,
      [
        {
          type: "hold",
          customerId: `holder-${i}`,
          selection: seats === null ? { quantity: 3, seats: null } : { quantity: 2, seats },
          ttlSeconds: TTL_SECONDS,
          idempotency: null,
        },
      ],
      null,
      new Date(deadlineMs - TTL_SECONDS * 1000),
    )) as [Outcome<Hold>];
    assert.ok(outcome.ok, JSON.stringify(outcome));
    assert.equal(Date.parse(outcome.value.expiresAt), deadlineMs);
    holds.push({
      id: outcome.value.id,
      eventId,
      quantity: outcome.value.quantity,
      seats,
      deadlineMs,
      confirmEarlyMs: i % 8 === 1 ? 800 : 0,
      releasable: i % 5 === 4,
    });
  }
  assert.equal((await store.getEvent(general.id))?.available, 0, "the holds took every ticket");
  assert.equal((await store.getEvent(seated.id))?.available, 0, "and every seat");

  const setup: RaceSetup = {
    store: config,
    holds,
    deadlinesFromMs: holds[0]!.deadlineMs,
    deadlinesToMs: holds.at(-1)!.deadlineMs,
    marginMs: MARGIN_MS,
  };
  const children = Array.from({ length: PROCESSES }, (_, index) => runChild(setup, index));
  await Promise.all(children.map((child) => child.ready));
  for (const child of children) child.go();
  const reports = await Promise.all(children.map((child) => child.report));
  // A last sweep, well after every deadline: whatever no process swept.
  const lastSwept = await store.expireHolds(new Date(base + SPREAD_MS + 600_000), 1000);

  const records = reports.flatMap((report) => report.records);
  const summary = (): string =>
    JSON.stringify({
      processes: reports.map((r) => ({ records: r.records.length, swept: r.swept, sweeps: r.sweeps })),
      lastSwept,
      codes: records.reduce<Record<string, number>>((counts, r) => {
        const key = `${r.op}:${r.ok ? "ok" : r.code}`;
        counts[key] = (counts[key] ?? 0) + 1;
        return counts;
      }, {}),
    });
  // A store error (SQLITE_BUSY past its timeout on a loaded machine, PostgreSQL unreachable) is retryable:
  // the command may not have been applied, or, if the answer was lost at the commit, it may have been. So
  // an outcome below may be explained by an error, never by nothing.
  const errors = records.filter((r) => r.code?.startsWith("error:"));
  const retryable = new Set(["error:STORE_UNAVAILABLE", "error:LOCK_UNAVAILABLE"]);
  assert.deepEqual(
    errors.filter((r) => !retryable.has(r.code!)),
    [],
    "no store errors but retryable ones",
  );

  // Each hold ended exactly once.
  const ended = { confirmed: 0, expired: 0, released: 0 };
  for (const hold of holds) {
    const stored = await store.getHold(hold.id);
    const status = stored?.status;
    assert.ok(
      status === "confirmed" || status === "expired" || status === "released",
      `${hold.id} ${status}`,
    );
    ended[status]++;
    const mine = records.filter((r) => r.holdId === hold.id);
    const confirmed = mine.filter((r) => r.op === "confirm" && r.ok);
    const inDoubt = mine.some((r) => r.op === "confirm" && r.code?.startsWith("error:"));
    if (status === "confirmed")
      assert.ok(
        confirmed.length === 1 || (confirmed.length === 0 && inDoubt),
        `a confirmed hold, ${confirmed.length} confirms answered`,
      );
    else assert.equal(confirmed.length, 0, `a ${status} hold, yet a confirm succeeded`);
    for (const confirm of confirmed)
      assert.ok(
        confirm.atMs < hold.deadlineMs,
        `a confirm at ${confirm.atMs - hold.deadlineMs} ms past the deadline`,
      );
    if (mine.some((r) => r.op === "confirm" && r.code === "hold_expired"))
      assert.equal(status, "expired", `a confirm refused hold_expired, the hold is ${status}`);
    if (status === "released")
      assert.ok(
        mine.some((r) => r.op === "release" && r.ok),
        "released by a release that succeeded",
      );
  }
  const expiredBySweeps = reports.reduce((n, r) => n + r.swept, 0) + lastSwept;
  assert.ok(
    expiredBySweeps <= ended.expired,
    `sweeps counted ${expiredBySweeps} expiries of ${ended.expired} expired holds: ${summary()}`,
  );

  // The orders are exactly the ones answered, cancelled exactly when a cancel succeeded.
  const answered = new Set(
    records.filter((r) => r.ok && r.op !== "cancel" && r.op !== "release").map((r) => r.orderId!),
  );
  const cancelled = new Set(records.filter((r) => r.ok && r.op === "cancel").map((r) => r.orderId!));
  for (const event of [seated, general]) {
    const orders = await allOrders(store, event.id);
    const unanswered = orders.filter((order) => !answered.has(order.id));
    assert.ok(
      unanswered.length <= errors.filter((r) => r.op === "confirm" || r.op === "purchase").length,
      `orders nobody was answered: ${unanswered.map((order) => order.id).join(", ")}`,
    );
    for (const order of orders) {
      if (cancelled.has(order.id)) assert.equal(order.status, "cancelled");
      else if (order.status === "cancelled")
        assert.ok(
          errors.some((r) => r.op === "cancel" && r.orderId === order.id),
          `order ${order.id} cancelled by no cancel`,
        );
    }
    const live = orders.filter((order) => order.status === "confirmed");
    const sold = live.reduce((n, order) => n + order.quantity, 0);
    const counters = await store.getEvent(event.id);
    const capacity = event.id === seated.id ? 40 : 60;
    assert.deepEqual(
      { sold: counters?.sold, held: counters?.held, available: counters?.available },
      { sold, held: 0, available: capacity - sold },
      `counters equal the rows: ${summary()}`,
    );
    if (event.id === seated.id) {
      const owners = new Map<string, string>();
      for (const order of live)
        for (const seat of order.seats ?? []) {
          assert.ok(!owners.has(seat), `seat ${seat} in ${owners.get(seat)} and ${order.id}`);
          owners.set(seat, order.id);
        }
      const map = await store.getSeatMap(event.id);
      const soldSeats = map!.sections
        .flatMap((s) => s.rows.flatMap((r) => r.seats))
        .filter((s) => s.status !== "available");
      assert.deepEqual(new Set(soldSeats.map((s) => s.id)), new Set(owners.keys()), "the seat map agrees");
    }
  }
  for (const id of answered) assert.ok(await store.getOrder(id), `answered order ${id} is stored`);

  // The race happened: holds were confirmed, holds expired and were refused a confirm, sweeps expired some.
  console.log(`# ${config.kind}: ${JSON.stringify(ended)} ${summary()}`);
  assert.ok(ended.confirmed >= 1 && ended.expired >= 1, `both endings: ${JSON.stringify(ended)}`);
  assert.ok(
    records.some((r) => r.op === "confirm" && r.code === "hold_expired"),
    `a confirm came after expiry: ${summary()}`,
  );
}

const postgresSkipReason = await postgresSkip();

describe("holds racing their deadlines across processes", () => {
  for (const layout of ["per-event", "single"] as const) {
    it(`sqlite (${layout}): each hold ends once, confirmed or expired, never both`, async () => {
      const dir = mkdtempSync(join(tmpdir(), `boxoffice-races-${layout}-`));
      dirs.push(dir);
      const store = new SqliteStore({ kind: "sqlite", dir, layout, durability: "full", maxOpenEvents: 8 });
      await store.init();
      try {
        await race(store, { kind: "sqlite", dir, layout });
      } finally {
        await store.close();
      }
    });
  }

  it(
    "postgres: each hold ends once, confirmed or expired, never both",
    { skip: postgresSkipReason },
    async () => {
      const fixture = await createTestPostgresStore("races");
      try {
        await race(fixture.store, { kind: "postgres", url: fixture.url, schema: fixture.schema });
      } finally {
        await fixture.cleanup();
      }
    },
  );
});
