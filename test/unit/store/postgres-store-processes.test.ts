/**
 * The cross-process oversell tests on PostgreSQL: 4 OS processes, 1,000 buyers, no lock at all, so that
 * only the database's guarded statements and constraints stand between them and overselling.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { planEvent } from "../../../src/domain/event.js";
import { newEventId } from "../../../src/domain/ids.js";
import { createTestPostgresStore, type TestPostgresStore } from "../../support/postgres-test-store.js";
import { postgresSkip } from "../../support/services.js";
import { runBuyers } from "../../support/postgres-buyers.js";

describe("postgres across processes, no lock", { skip: await postgresSkip() }, () => {
  let fixture: TestPostgresStore;
  before(async () => {
    fixture = await createTestPostgresStore("processes");
  });
  after(async () => {
    await fixture?.cleanup();
  });

  it("4 processes, 1,000 purchases of 1-4 tickets, capacity 500: exactly 500 sold", async () => {
    const { store } = fixture;
    const plan = planEvent({ name: "Hot", capacity: 500, maxPerCustomer: 8 }, newEventId(), new Date());
    await store.createEvent(plan);
    const reports = await runBuyers(fixture.url, fixture.schema, plan.id, {
      processes: 4,
      buyers: 250,
      concurrency: 4,
      kind: "general",
      seats: 0,
    });
    const soldByAnswers = reports.reduce((n, r) => n + r.sold, 0);
    let soldByOrders = 0;
    for (const id of reports.flatMap((r) => r.orders))
      soldByOrders += (await store.getOrder(id))?.quantity ?? 0;
    assert.deepEqual(
      reports.map((r) => r.errors),
      [{}, {}, {}, {}],
    );
    assert.equal((await store.getEvent(plan.id))?.sold, 500);
    assert.equal(soldByAnswers, 500, "the confirmed answers add up to the capacity");
    assert.equal(soldByOrders, 500, "every confirmed answer is an order in the store");
    assert.deepEqual([...new Set(reports.flatMap((r) => Object.keys(r.refused)))], ["sold_out"]);
  });

  it("4 processes with overlapping seat requests: no seat in two orders", async () => {
    const { store } = fixture;
    const plan = planEvent(
      { name: "Seated", seating: { sections: [{ name: "A", rows: 1, seatsPerRow: 60 }] }, maxPerCustomer: 8 },
      newEventId(),
      new Date(),
    );
    await store.createEvent(plan);
    const reports = await runBuyers(fixture.url, fixture.schema, plan.id, {
      processes: 4,
      buyers: 100,
      concurrency: 4,
      kind: "seated",
      seats: 60,
    });
    assert.deepEqual(
      reports.map((r) => r.errors),
      [{}, {}, {}, {}],
    );
    const owner = new Map<string, string>();
    for (const id of reports.flatMap((r) => r.orders)) {
      const order = await store.getOrder(id);
      for (const seat of order?.seats ?? []) {
        assert.ok(!owner.has(seat), `seat ${seat} sold to ${owner.get(seat)} and ${id}`);
        owner.set(seat, id);
      }
    }
    const map = await store.getSeatMap(plan.id);
    const soldSeats =
      map?.sections[0]?.rows[0]?.seats.filter((s) => s.status === "sold").map((s) => s.id) ?? [];
    assert.deepEqual(new Set(soldSeats), new Set(owner.keys()), "the seat map agrees with the orders");
    assert.equal((await store.getEvent(plan.id))?.sold, owner.size);
    assert.ok(owner.size > 0);
  });
});
