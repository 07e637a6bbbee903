/**
 * The cross-process oversell tests on PostgreSQL: 4 OS processes, 1,000 buyers, no lock at all, so that
 * only the database's guarded statements and constraints stand between them and overselling.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { planEvent } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import { createTestPostgresStore, type TestPostgresStore } from "../support/postgres-test-store.js";
import { postgresSkip } from "../support/services.js";
import { runBuyers } from "../support/postgres-buyers.js";
import {
  assertExactSellout,
  assertQuotasHold,
  assertSeatsSoldOnce,
  TYPED_EVENT,
} from "../support/sales-checks.js";

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
    assert.deepEqual(
      reports.map((r) => r.errors),
      [{}, {}, {}, {}],
    );
    await assertExactSellout(store, plan.id, 500, {
      sold: reports.reduce((n, r) => n + r.sold, 0),
      orderIds: reports.flatMap((r) => r.orders),
      refusedCodes: reports.flatMap((r) => Object.keys(r.refused)),
    });
  });

  it("4 processes buying three ticket types at once: no quota and not the capacity passed", async () => {
    const { store } = fixture;
    const plan = planEvent(TYPED_EVENT, newEventId(), new Date());
    await store.createEvent(plan);
    const reports = await runBuyers(fixture.url, fixture.schema, plan.id, {
      processes: 4,
      buyers: 120,
      concurrency: 4,
      kind: "typed",
      seats: 0,
    });
    assert.deepEqual(
      reports.map((r) => r.errors),
      [{}, {}, {}, {}],
    );
    await assertQuotasHold(store, plan.id, {
      sold: reports.reduce((n, r) => n + r.sold, 0),
      orderIds: reports.flatMap((r) => r.orders),
      refusedCodes: reports.flatMap((r) => Object.keys(r.refused)),
    });
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
    await assertSeatsSoldOnce(
      store,
      plan.id,
      reports.flatMap((r) => r.orders),
    );
  });
});
