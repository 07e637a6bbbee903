/**
 * The store contract, written once and run against every backend (SQLite in both layouts, PostgreSQL):
 * `describeStoreContract(name, factory)`. It checks the rules of src/domain/inventory.ts through the
 * Store interface, including a property test that runs random command sequences against the store and
 * against the in-memory reference model and requires the same answers and counters, and the poison
 * property of poison-contract.ts: a command the store cannot take fails alone.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { EventBatch, OrderFilter, OrderPage, Store } from "../../src/store/store.js";
import type { WriteGuard } from "../../src/domain/write-guard.js";
import type { EventPlan, NewEventRequest } from "../../src/domain/event.js";
import { planEvent } from "../../src/domain/event.js";
import { newEventId, newHoldId, newOrderId } from "../../src/domain/ids.js";
import type { Command, Hold, Order, Outcome, Selection } from "../../src/domain/sale.js";
import { Inventory } from "../../src/domain/inventory.js";
import { describePoisonContract } from "./poison-contract.js";

export interface StoreFixture {
  store: Store;
  /** Another handle on the same data (another process would open one like it). */
  openAnother(): Promise<Store>;
  /** Closes what the fixture opened and removes its data. */
  cleanup(): Promise<void>;
}

const T0 = new Date("2030-01-01T10:00:00.000Z");
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

/*
 * Batches against the reference model: random batches of purchases, holds, confirms, releases, cancels
 * and repeated idempotency keys go through one `execute()` each, and every answer and the counters must
 * match the in-memory model applied one command after another. A server sends many commands per
 * transaction (group commit), so this checks that one transaction decides each as if it were alone.
 */
type BatchOp =
  | { op: "purchase" | "hold"; customer: number; n: number; seats: number[]; key: number | null }
  | { op: "confirm" | "release" | "cancel"; target: number; key: number | null }
  // Sends an earlier command with an idempotency key again, exactly (a client's retry).
  | { op: "retry"; index: number };

const BATCH_T0 = new Date("2031-03-01T12:00:00.000Z");

const batchOpArbitrary: fc.Arbitrary<BatchOp> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      op: fc.constantFrom("purchase" as const, "hold" as const),
      customer: fc.nat(3),
      n: fc.integer({ min: 1, max: 4 }),
      seats: fc.array(fc.nat(9), { minLength: 1, maxLength: 3 }),
      key: fc.option(fc.nat(4), { nil: null }),
    }),
  },
  fc.record({
    op: fc.constantFrom("confirm" as const, "release" as const, "cancel" as const),
    target: fc.nat(30),
    key: fc.option(fc.nat(4), { nil: null }),
  }),
  fc.record({ op: fc.constant("retry" as const), index: fc.nat(30) }),
);

export function describeStoreContract(
  name: string,
  factory: () => Promise<StoreFixture>,
  options: { skip?: string } = {},
) {
  describe(`store contract: ${name}`, { skip: options.skip }, () => {
    let fixture: StoreFixture;
    let store: Store;

    before(async () => {
      fixture = await factory();
      store = fixture.store;
    });
    after(async () => {
      await fixture?.cleanup();
    });

    async function createEvent(request: Partial<NewEventRequest> = {}): Promise<EventPlan> {
      const plan = planEvent({ name: "Night 1", capacity: 10, ...request }, newEventId(T0.getTime()), T0);
      await store.createEvent(plan);
      return plan;
    }
    const general = (quantity: number): Selection => ({ quantity, seats: null });
    const seated = (...seats: string[]): Selection => ({ quantity: seats.length, seats });
    const purchase = (
      customerId: string,
      selection: Selection,
      key?: string,
      fingerprint = "fp",
    ): Command => ({
      type: "purchase",
      customerId,
      selection,
      idempotency: key ? { key, fingerprint } : null,
    });
    const hold = (customerId: string, selection: Selection, ttlSeconds = 60): Command => ({
      type: "hold",
      customerId,
      selection,
      ttlSeconds,
      idempotency: null,
    });
    async function one(
      eventId: string,
      command: Command,
      now = T0,
      guard: WriteGuard | null = null,
    ): Promise<Outcome> {
      const [outcome] = await store.execute(eventId, [command], guard, now);
      assert.ok(outcome);
      return outcome;
    }
    function value<T extends Order | Hold>(outcome: Outcome): T {
      assert.ok(outcome.ok, `expected success, got ${JSON.stringify(outcome)}`);
      return outcome.value as T;
    }
    function refusal(outcome: Outcome): string {
      assert.ok(!outcome.ok, `expected a refusal, got ${JSON.stringify(outcome)}`);
      return outcome.refusal.code;
    }
    async function counters(eventId: string) {
      const event = await store.getEvent(eventId);
      assert.ok(event);
      assert.equal(event.available, event.capacity - event.sold - event.held);
      return { sold: event.sold, held: event.held, available: event.available };
    }

    describe("events", () => {
      it("creates a general admission event and reads it back", async () => {
        const plan = await createEvent({ capacity: 500, maxPerOrder: 4, startsAt: "2030-06-01T20:00:00Z" });
        const event = await store.getEvent(plan.id);
        assert.deepEqual(event, {
          id: plan.id,
          name: "Night 1",
          kind: "general",
          capacity: 500,
          sold: 0,
          held: 0,
          available: 500,
          maxPerOrder: 4,
          maxPerCustomer: 8,
          startsAt: "2030-06-01T20:00:00.000Z",
          createdAt: T0.toISOString(),
          // Created without a window or a state: published, on sale at once, as before.
          description: null,
          state: "on_sale",
          salesStartAt: null,
          salesEndAt: null,
          confirmHoldsWhilePaused: true,
          maxHoldLifetimeSeconds: 3600,
          currency: "EUR",
          ticketTypes: [
            { id: "default", name: "General admission", price: 0, quota: null, maxPerOrder: null },
          ],
          priceZones: [],
        });
      });

      it("creates a seated event whose seat map lists every seat as available", async () => {
        const plan = await createEvent({
          capacity: undefined,
          seating: {
            sections: [
              { name: "A", rows: 2, seatsPerRow: 3 },
              { name: "B", rows: 1, seatsPerRow: 2 },
            ],
          },
        });
        const event = await store.getEvent(plan.id);
        assert.equal(event?.kind, "seated");
        assert.equal(event?.capacity, 8);
        const map = await store.getSeatMap(plan.id);
        assert.deepEqual(map, {
          sections: [
            {
              name: "A",
              rows: [1, 2].map((row) => ({
                row,
                seats: [1, 2, 3].map((s) => ({ id: `A-${row}-${s}`, status: "available" })),
              })),
            },
            {
              name: "B",
              rows: [
                {
                  row: 1,
                  seats: [
                    { id: "B-1-1", status: "available" },
                    { id: "B-1-2", status: "available" },
                  ],
                },
              ],
            },
          ],
        });
      });

      it("answers null for events, orders and holds that do not exist, and for malformed ids", async () => {
        assert.equal(await store.getEvent(newEventId()), null);
        assert.equal(await store.getEvent("nonsense"), null);
        assert.equal(await store.getSeatMap(newEventId()), null);
        assert.equal(await store.getOrder(newOrderId(newEventId())), null);
        assert.equal(await store.getOrder("ord_../../etc"), null);
        assert.equal(await store.getHold(newHoldId(newEventId())), null);
        const [outcome] = await store.execute(newEventId(), [purchase("c", general(1))], null, T0);
        assert.equal(outcome && refusal(outcome), "event_not_found");
      });

      it("lists events in creation order, page by page with a cursor", async () => {
        const created: string[] = [];
        for (let i = 0; i < 5; i++) created.push((await createEvent({ name: `List ${i}` })).id);
        const seen: string[] = [];
        let cursor: string | null = null;
        let pages = 0;
        do {
          const page = await store.listEvents({ limit: 2, cursor });
          assert.ok(page.events.length <= 2);
          seen.push(...page.events.map((e) => e.id));
          cursor = page.nextCursor;
          pages++;
        } while (cursor !== null && pages < 100);
        assert.deepEqual(
          seen.filter((id) => created.includes(id)),
          created,
        );
        assert.deepEqual([...seen].sort(), seen, "oldest first");
      });
    });

    describe("purchases", () => {
      it("sells general admission tickets until exactly sold out", async () => {
        const plan = await createEvent({ capacity: 5, maxPerCustomer: 100 });
        const outcomes = await store.execute(
          plan.id,
          [2, 2, 2, 1, 1].map((n, i) => purchase(`c${i}`, general(n))),
          null,
          T0,
        );
        assert.deepEqual(
          outcomes.map((o) => (o.ok ? "ok" : o.refusal.code)),
          ["ok", "ok", "sold_out", "ok", "sold_out"],
        );
        assert.deepEqual(await counters(plan.id), { sold: 5, held: 0, available: 0 });
        const order = value<Order>(outcomes[0] as Outcome);
        assert.deepEqual(await store.getOrder(order.id), order);
        assert.equal(order.status, "confirmed");
        assert.equal(order.eventId, plan.id);
      });

      it("sells seats once: an overlapping request is refused with the taken seats", async () => {
        const plan = await createEvent({
          capacity: undefined,
          seating: { sections: [{ name: "A", rows: 1, seatsPerRow: 4 }] },
        });
        const first = value<Order>(await one(plan.id, purchase("c1", seated("A-1-1", "A-1-2"))));
        assert.deepEqual(first.seats, ["A-1-1", "A-1-2"]);
        const second = await one(plan.id, purchase("c2", seated("A-1-2", "A-1-3")));
        assert.equal(refusal(second), "seats_unavailable");
        assert.ok(!second.ok && second.refusal.seats?.includes("A-1-2"));
        assert.ok(!second.ok && !second.refusal.seats?.includes("A-1-3"));
        assert.deepEqual(await counters(plan.id), { sold: 2, held: 0, available: 2 });
        const map = await store.getSeatMap(plan.id);
        const statuses = map?.sections[0]?.rows[0]?.seats.map((s) => s.status);
        assert.deepEqual(statuses, ["sold", "sold", "available", "available"]);
      });

      it("refuses unknown seats, repeated seats and the wrong kind of body", async () => {
        const seatedPlan = await createEvent({
          capacity: undefined,
          seating: { sections: [{ name: "A", rows: 1, seatsPerRow: 4 }] },
        });
        const generalPlan = await createEvent({ capacity: 10 });
        assert.equal(refusal(await one(seatedPlan.id, purchase("c", seated("A-1-9")))), "invalid_request");
        assert.equal(refusal(await one(seatedPlan.id, purchase("c", seated("Z-1-1")))), "invalid_request");
        assert.equal(
          refusal(await one(seatedPlan.id, purchase("c", seated("A-1-1", "A-1-1")))),
          "invalid_request",
        );
        assert.equal(refusal(await one(seatedPlan.id, purchase("c", general(1)))), "invalid_request");
        assert.equal(refusal(await one(generalPlan.id, purchase("c", seated("A-1-1")))), "invalid_request");
        assert.deepEqual(await counters(seatedPlan.id), { sold: 0, held: 0, available: 4 });
        assert.deepEqual(await counters(generalPlan.id), { sold: 0, held: 0, available: 10 });
      });

      it("enforces maxPerOrder and maxPerCustomer, counting holds too", async () => {
        const plan = await createEvent({ capacity: 100, maxPerOrder: 4, maxPerCustomer: 6 });
        assert.equal(refusal(await one(plan.id, purchase("c", general(5)))), "invalid_request");
        value(await one(plan.id, purchase("c", general(4))));
        value(await one(plan.id, hold("c", general(2))));
        assert.equal(refusal(await one(plan.id, purchase("c", general(1)))), "customer_limit_reached");
        value(await one(plan.id, purchase("other", general(1))));
        assert.deepEqual(await counters(plan.id), { sold: 5, held: 2, available: 93 });
      });

      it("gives each command in a batch its own answer: a refusal never undoes another sale", async () => {
        const plan = await createEvent({
          capacity: undefined,
          seating: { sections: [{ name: "A", rows: 1, seatsPerRow: 3 }] },
          maxPerCustomer: 2,
        });
        const outcomes = await store.execute(
          plan.id,
          [
            purchase("a", seated("A-1-1")),
            purchase("b", seated("A-1-1", "A-1-2")), // A-1-1 taken by the first: refused as a whole
            purchase("a", seated("A-1-2", "A-1-3")), // a would pass 2 tickets
            purchase("c", seated("A-1-2")),
          ],
          null,
          T0,
        );
        assert.deepEqual(
          outcomes.map((o) => (o.ok ? "ok" : o.refusal.code)),
          ["ok", "seats_unavailable", "customer_limit_reached", "ok"],
        );
        assert.deepEqual(await counters(plan.id), { sold: 2, held: 0, available: 1 });
        const seats = (await store.getSeatMap(plan.id))?.sections[0]?.rows[0]?.seats.map((s) => s.status);
        assert.deepEqual(seats, ["sold", "sold", "available"]);
      });
    });

    describe("holds", () => {
      it("holds tickets, then confirms them into an order", async () => {
        const plan = await createEvent({ capacity: 10 });
        const h = value<Hold>(await one(plan.id, hold("c", general(3), 120)));
        assert.equal(h.status, "active");
        assert.equal(h.expiresAt, at(120).toISOString());
        assert.deepEqual(await counters(plan.id), { sold: 0, held: 3, available: 7 });
        const order = value<Order>(
          await one(plan.id, { type: "confirm-hold", holdId: h.id, idempotency: null }, at(10)),
        );
        assert.equal(order.quantity, 3);
        assert.equal(order.customerId, "c");
        assert.deepEqual(await counters(plan.id), { sold: 3, held: 0, available: 7 });
        assert.equal((await store.getHold(h.id))?.status, "confirmed");
        assert.equal(
          refusal(await one(plan.id, { type: "confirm-hold", holdId: h.id, idempotency: null }, at(11))),
          "hold_not_active",
        );
        assert.deepEqual(await counters(plan.id), { sold: 3, held: 0, available: 7 });
      });

      it("releases a hold exactly once", async () => {
        const plan = await createEvent({
          capacity: undefined,
          seating: { sections: [{ name: "A", rows: 1, seatsPerRow: 2 }] },
        });
        const h = value<Hold>(await one(plan.id, hold("c", seated("A-1-1"))));
        assert.equal(refusal(await one(plan.id, purchase("d", seated("A-1-1")))), "seats_unavailable");
        value(await one(plan.id, { type: "release-hold", holdId: h.id }));
        value(await one(plan.id, { type: "release-hold", holdId: h.id }));
        assert.deepEqual(await counters(plan.id), { sold: 0, held: 0, available: 2 });
        assert.equal((await store.getHold(h.id))?.status, "released");
        value(await one(plan.id, purchase("d", seated("A-1-1"))));
        assert.equal(
          refusal(await one(plan.id, { type: "confirm-hold", holdId: h.id, idempotency: null })),
          "hold_not_active",
        );
        assert.equal(
          refusal(await one(plan.id, { type: "release-hold", holdId: newHoldId(plan.id) })),
          "hold_not_found",
        );
      });

      it("expires holds exactly once, even with two handles sweeping at once", async () => {
        const plan = await createEvent({ capacity: 10, maxPerCustomer: 10 });
        const holds = [];
        for (let i = 0; i < 4; i++)
          holds.push(value<Hold>(await one(plan.id, hold(`c${i}`, general(2), 30))));
        assert.deepEqual(await counters(plan.id), { sold: 0, held: 8, available: 2 });
        const other = await fixture.openAnother();
        try {
          assert.equal(await store.expireHolds(at(29), 100), 0, "nothing is due yet");
          const [a, b] = await Promise.all([store.expireHolds(at(31), 100), other.expireHolds(at(31), 100)]);
          // Each hold is expired by exactly one of the two: a double count would give back tickets twice.
          assert.equal(a + b, 4, `expired ${a} + ${b}`);
          assert.deepEqual(await counters(plan.id), { sold: 0, held: 0, available: 10 });
          assert.equal(await store.expireHolds(at(40), 100), 0);
          assert.equal(await other.expireHolds(at(40), 100), 0);
          assert.deepEqual(await counters(plan.id), { sold: 0, held: 0, available: 10 });
        } finally {
          await other.close();
        }
        for (const h of holds) assert.equal((await store.getHold(h.id))?.status, "expired");
        const late = await one(
          plan.id,
          { type: "confirm-hold", holdId: holds[0]!.id, idempotency: null },
          at(41),
        );
        assert.equal(refusal(late), "hold_expired");
      });

      it("expires an overdue hold before it sells, in the same transaction", async () => {
        const plan = await createEvent({ capacity: 2 });
        const h = value<Hold>(await one(plan.id, hold("c", general(2), 30)));
        assert.equal(refusal(await one(plan.id, purchase("d", general(1)), at(10))), "sold_out");
        value(await one(plan.id, purchase("d", general(2)), at(31)));
        assert.equal((await store.getHold(h.id))?.status, "expired");
        assert.equal(
          refusal(await one(plan.id, { type: "confirm-hold", holdId: h.id, idempotency: null }, at(32))),
          "hold_expired",
        );
        assert.deepEqual(await counters(plan.id), { sold: 2, held: 0, available: 0 });
      });
    });

    describe("cancellation", () => {
      it("gives tickets and seats back exactly once; a repeat answers the same order", async () => {
        const plan = await createEvent({
          capacity: undefined,
          seating: { sections: [{ name: "A", rows: 1, seatsPerRow: 2 }] },
        });
        const order = value<Order>(await one(plan.id, purchase("c", seated("A-1-1", "A-1-2"))));
        const cancelled = value<Order>(
          await one(plan.id, { type: "cancel-order", orderId: order.id }, at(5)),
        );
        assert.equal(cancelled.status, "cancelled");
        assert.equal(cancelled.cancelledAt, at(5).toISOString());
        const again = value<Order>(await one(plan.id, { type: "cancel-order", orderId: order.id }, at(6)));
        assert.deepEqual(again, cancelled);
        assert.deepEqual(await counters(plan.id), { sold: 0, held: 0, available: 2 });
        value(await one(plan.id, purchase("d", seated("A-1-1"))));
        assert.equal(
          refusal(await one(plan.id, { type: "cancel-order", orderId: newOrderId(plan.id) })),
          "order_not_found",
        );
      });
    });

    describe("order list", () => {
      /** 12 orders of customers a, b and c at T0 + 0..11 s, plus 2 of another event; #3 and #7 cancelled. */
      async function sellTwelve(): Promise<{ plan: EventPlan; orders: Order[] }> {
        const plan = await createEvent({ capacity: 100, maxPerOrder: 4, maxPerCustomer: 100 });
        const other = await createEvent({ capacity: 100 });
        const orders: Order[] = [];
        for (let i = 0; i < 12; i++) {
          // Two per batch now and then: ids made in one transaction still list in order.
          const customer = ["a", "b", "c"][i % 3] as string;
          orders.push(value<Order>(await one(plan.id, purchase(customer, general(1 + (i % 4))), at(i))));
          if (i % 5 === 0) value(await one(other.id, purchase(customer, general(1)), at(i)));
        }
        for (const i of [3, 7]) {
          const order = orders[i] as Order;
          orders[i] = value<Order>(await one(plan.id, { type: "cancel-order", orderId: order.id }, at(20)));
        }
        return { plan, orders };
      }
      async function walk(eventId: string, filter: OrderFilter, limit: number): Promise<Order[]> {
        const seen: Order[] = [];
        let cursor: string | null = null;
        for (let pages = 0; pages < 100; pages++) {
          const page: OrderPage | null = await store.listOrders(eventId, filter, { limit, cursor });
          assert.ok(page);
          assert.ok(page.orders.length <= limit);
          seen.push(...page.orders);
          if (page.nextCursor === null) return seen;
          assert.equal(page.nextCursor, page.orders.at(-1)?.id, "the cursor is the page's last id");
          cursor = page.nextCursor;
        }
        assert.fail("the pages never ended");
      }

      it("pages through an event's orders in id order, each exactly once, whatever the page size", async () => {
        const { plan, orders } = await sellTwelve();
        const byId = [...orders].sort((x, y) => (x.id < y.id ? -1 : x.id > y.id ? 1 : 0));
        assert.deepEqual(byId, orders, "ids sort in creation order");
        for (const limit of [1, 5, 12, 13, 1000]) {
          assert.deepEqual(await walk(plan.id, {}, limit), orders, `pages of ${limit}`);
        }
        const full = await store.listOrders(plan.id, {}, { limit: 12, cursor: null });
        assert.equal(full?.nextCursor, null, "no cursor when nothing follows");
        const past = await store.listOrders(plan.id, {}, { limit: 5, cursor: orders.at(-1)?.id ?? null });
        assert.deepEqual(past, { orders: [], nextCursor: null });
      });

      it("filters by status, customer and a half-open creation window, together with the pages", async () => {
        const { plan, orders } = await sellTwelve();
        const cancelled = orders.filter((o) => o.status === "cancelled");
        assert.equal(cancelled.length, 2);
        assert.deepEqual(await walk(plan.id, { status: "cancelled" }, 1), cancelled);
        assert.deepEqual(
          await walk(plan.id, { status: "confirmed" }, 4),
          orders.filter((o) => o.status === "confirmed"),
        );
        assert.deepEqual(
          await walk(plan.id, { customerId: "b" }, 2),
          orders.filter((o) => o.customerId === "b"),
        );
        const window = { createdAfter: at(3).toISOString(), createdBefore: at(9).toISOString() };
        assert.deepEqual(await walk(plan.id, window, 2), orders.slice(3, 9), "at or after, and before");
        assert.deepEqual(
          await walk(plan.id, { ...window, customerId: "a", status: "confirmed" }, 1),
          orders.slice(3, 9).filter((o) => o.customerId === "a" && o.status === "confirmed"),
        );
        assert.deepEqual(await walk(plan.id, { customerId: "nobody" }, 5), []);
      });

      it("answers null for an event that does not exist, and an empty page for one without orders", async () => {
        assert.equal(await store.listOrders(newEventId(), {}, { limit: 10, cursor: null }), null);
        const plan = await createEvent({ capacity: 5 });
        assert.deepEqual(await store.listOrders(plan.id, {}, { limit: 10, cursor: null }), {
          orders: [],
          nextCursor: null,
        });
      });

      it("keeps a customer id that looks like a formula or SQL exactly as it was sold", async () => {
        const plan = await createEvent({ capacity: 5 });
        const customerId = `=HYPERLINK("x");' OR '1'='1 -- ©`;
        const order = value<Order>(await one(plan.id, purchase(customerId, general(1))));
        const page = await store.listOrders(plan.id, { customerId }, { limit: 10, cursor: null });
        assert.deepEqual(page?.orders, [order]);
      });
    });

    describe("idempotency", () => {
      it("replays the first answer for a repeated key and refuses it with another request", async () => {
        const plan = await createEvent({ capacity: 10 });
        const first = await one(plan.id, purchase("c", general(2), "key-1", "fp-a"));
        const again = await one(plan.id, purchase("c", general(2), "key-1", "fp-a"), at(60));
        assert.equal(again.replayed, true);
        assert.equal(value<Order>(again).id, value<Order>(first).id);
        assert.equal(
          refusal(await one(plan.id, purchase("c", general(3), "key-1", "fp-b"))),
          "idempotency_key_reused",
        );
        assert.deepEqual(await counters(plan.id), { sold: 2, held: 0, available: 8 });
      });

      it("makes one sale for a key repeated inside one batch, and replays refusals too", async () => {
        const plan = await createEvent({ capacity: 1 });
        const outcomes = await store.execute(
          plan.id,
          [purchase("c", general(1), "k", "fp"), purchase("c", general(1), "k", "fp")],
          null,
          T0,
        );
        assert.equal(value<Order>(outcomes[1] as Outcome).id, value<Order>(outcomes[0] as Outcome).id);
        assert.equal(outcomes[1]?.replayed, true);
        const refused = await one(plan.id, purchase("d", general(1), "k2", "fp"));
        assert.equal(refusal(refused), "sold_out");
        const replayed = await one(plan.id, purchase("d", general(1), "k2", "fp"));
        assert.equal(refusal(replayed), "sold_out");
        assert.equal(replayed.replayed, true);
        assert.deepEqual(await counters(plan.id), { sold: 1, held: 0, available: 0 });
      });

      it("scopes keys per event and forgets them after the retention time", async () => {
        const a = await createEvent({ capacity: 5 });
        const b = await createEvent({ capacity: 5 });
        value(await one(a.id, purchase("c", general(1), "shared", "fp")));
        const onB = await one(b.id, purchase("c", general(1), "shared", "fp"));
        assert.equal(onB.replayed, false);
        value(onB);
        let pruned = 0;
        for (let i = 0; i < 1000 && pruned < 2; i++) pruned += await store.pruneIdempotency(at(1));
        assert.ok(pruned >= 2, `pruned ${pruned}`);
        const fresh = await one(a.id, purchase("c", general(1), "shared", "fp"), at(2));
        assert.equal(fresh.replayed, false, "a forgotten key sells again");
      });
    });

    describe("fencing", () => {
      let lockKeys = 0;
      const guard = (fence: number, signal = new AbortController().signal): WriteGuard => ({
        lockKey: `test-lock-${lockKeys}`,
        fence,
        signal,
      });

      it("refuses a write with an older fence than one it applied, and commits nothing", async () => {
        const plan = await createEvent({ capacity: 10 });
        lockKeys++;
        value(await one(plan.id, purchase("c", general(1)), T0, guard(7)));
        value(await one(plan.id, purchase("c", general(1)), T0, guard(7)));
        value(await one(plan.id, purchase("c", general(1)), T0, guard(9)));
        await assert.rejects(() => store.execute(plan.id, [purchase("c", general(1))], guard(8), T0), {
          code: "STALE_FENCE",
        });
        assert.deepEqual(await counters(plan.id), { sold: 3, held: 0, available: 7 });
      });

      it("commits nothing when the lease was lost before the write", async () => {
        const plan = await createEvent({ capacity: 10 });
        lockKeys++;
        const controller = new AbortController();
        controller.abort();
        await assert.rejects(
          () => store.execute(plan.id, [purchase("c", general(1))], guard(1, controller.signal), T0),
          { code: "LOCK_LOST" },
        );
        assert.deepEqual(await counters(plan.id), { sold: 0, held: 0, available: 10 });
      });
    });

    describe("the sale lifecycle, judged in the store's transaction by the database's clock", () => {
      // The window is judged by the database's clock, which the test cannot move: the times are set
      // far from the real now, on either side.
      const hourAgo = () => new Date(Date.now() - 3600_000).toISOString();
      const inAnHour = () => new Date(Date.now() + 3600_000).toISOString();

      it("refuses a draft event's sales with sale_not_open until it is published", async () => {
        const plan = await createEvent({ state: "draft" });
        assert.equal((await store.getEvent(plan.id))?.state, "draft");
        assert.equal(refusal(await one(plan.id, purchase("c", general(1)))), "sale_not_open");
        assert.equal(refusal(await one(plan.id, hold("c", general(1)))), "sale_not_open");
        assert.deepEqual(await counters(plan.id), { sold: 0, held: 0, available: 10 });
        const published = await store.changeEventStatus(plan.id, "publish");
        assert.equal(published?.ok && published.event.state, "on_sale");
        value(await one(plan.id, purchase("c", general(1))));
      });

      it("opens at salesStartAt and closes at salesEndAt, by the database's clock", async () => {
        const opensAt = inAnHour();
        const plan = await createEvent({ salesStartAt: opensAt });
        assert.equal((await store.getEvent(plan.id))?.state, "scheduled");
        // The instance's `now` is far past the start: it does not count.
        const early = await one(plan.id, purchase("c", general(1)), new Date(Date.now() + 7200_000));
        assert.deepEqual(!early.ok && early.refusal, {
          code: "sale_not_open",
          detail: `the sale opens at ${new Date(opensAt).toISOString()}`,
          opensAt: new Date(opensAt).toISOString(),
        });
        const moved = await store.updateEvent(plan.id, { salesStartAt: hourAgo(), salesEndAt: inAnHour() });
        assert.equal(moved?.ok && moved.event.state, "on_sale");
        value(await one(plan.id, purchase("c", general(2))));
        const ended = await store.updateEvent(plan.id, {
          salesEndAt: new Date(Date.now() - 1000).toISOString(),
        });
        assert.equal(ended?.ok && ended.event.state, "closed");
        // The instance's `now` is before the end: it does not count either.
        assert.equal(
          refusal(await one(plan.id, hold("c", general(1)), new Date(Date.now() - 7200_000))),
          "sale_closed",
        );
        assert.deepEqual(await counters(plan.id), { sold: 2, held: 0, available: 8 });
      });

      it("a pause stops the next batch of every handle; resume sells again", async () => {
        const plan = await createEvent();
        const other = await fixture.openAnother();
        try {
          value(await one(plan.id, purchase("c", general(1))));
          const [warm] = await other.execute(plan.id, [purchase("d", general(1))], null, T0);
          assert.ok(warm?.ok, "the other handle has read the event before the pause");
          const paused = await store.changeEventStatus(plan.id, "pause");
          assert.equal(paused?.ok && paused.event.state, "paused");
          const outcomes = await other.execute(
            plan.id,
            [purchase("d", general(1)), hold("e", general(1))],
            null,
            T0,
          );
          assert.deepEqual(
            outcomes.map((o) => !o.ok && o.refusal.code),
            ["sale_paused", "sale_paused"],
          );
          const resumed = await other.changeEventStatus(plan.id, "resume");
          assert.equal(resumed?.ok && resumed.event.state, "on_sale");
          value(await one(plan.id, purchase("c", general(1))));
          assert.deepEqual(await counters(plan.id), { sold: 3, held: 0, available: 7 });
        } finally {
          await other.close();
        }
      });

      it("confirms a hold while paused as the event says; never after close; close is final", async () => {
        const lenient = await createEvent();
        const strict = await createEvent({ confirmHoldsWhilePaused: false });
        const h1 = value<Hold>(await one(lenient.id, hold("c", general(2))));
        const h2 = value<Hold>(await one(strict.id, hold("c", general(2))));
        await store.changeEventStatus(lenient.id, "pause");
        await store.changeEventStatus(strict.id, "pause");
        const confirm = (holdId: string): Command => ({ type: "confirm-hold", holdId, idempotency: null });
        value(await one(lenient.id, confirm(h1.id)));
        assert.equal(refusal(await one(strict.id, confirm(h2.id))), "sale_paused");
        const closed = await store.changeEventStatus(strict.id, "close");
        assert.equal(closed?.ok && closed.event.state, "closed");
        assert.equal(refusal(await one(strict.id, confirm(h2.id))), "sale_closed");
        const again = await store.changeEventStatus(strict.id, "resume");
        assert.equal(again && !again.ok && again.refusal.code, "invalid_transition");
        assert.equal(await store.changeEventStatus(newEventId(), "pause"), null);
        assert.deepEqual(await counters(lenient.id), { sold: 2, held: 0, available: 8 });
      });

      it("never takes the capacity below sold + held; an edited limit holds from the next batch", async () => {
        const plan = await createEvent({ capacity: 10 });
        value(await one(plan.id, purchase("a", general(3))));
        value(await one(plan.id, hold("b", general(2))));
        const below = await store.updateEvent(plan.id, { capacity: 4 });
        assert.equal(below && !below.ok && below.refusal.code, "capacity_below_taken");
        assert.equal((await store.getEvent(plan.id))?.capacity, 10, "a refused edit changes nothing");
        const exact = await store.updateEvent(plan.id, { capacity: 5, maxPerOrder: 2, name: "Renamed" });
        assert.ok(exact?.ok);
        assert.deepEqual(
          [exact.event.capacity, exact.event.available, exact.event.maxPerOrder, exact.event.name],
          [5, 0, 2, "Renamed"],
        );
        assert.equal(refusal(await one(plan.id, purchase("c", general(1)))), "sold_out");
        await store.updateEvent(plan.id, { capacity: 20 });
        assert.equal(refusal(await one(plan.id, purchase("c", general(3)))), "invalid_request");
        value(await one(plan.id, purchase("c", general(2))));
        assert.equal(await store.updateEvent(newEventId(), { capacity: 5 }), null);
      });
    });

    describe("prices, lines and the report", () => {
      const items = (...pairs: [string, number][]): Selection => ({
        quantity: pairs.reduce((sum, [, n]) => sum + n, 0),
        seats: null,
        items: pairs.map(([ticketTypeId, quantity]) => ({ ticketTypeId, quantity })),
      });
      const typed: Partial<NewEventRequest> = {
        capacity: 10,
        currency: "USD",
        ticketTypes: [
          { id: "vip", name: "VIP", price: 12_000, quota: 3, maxPerOrder: 2 },
          { id: "ga", name: "Standing", price: 4_500 },
        ],
      };

      it("prices orders and holds from the event's ticket types; totals are the sum of the lines", async () => {
        const plan = await createEvent(typed);
        const order = value<Order>(await one(plan.id, purchase("a", items(["vip", 2], ["ga", 1]))));
        assert.deepEqual(order.lines, [
          { item: "ticket_type", id: "vip", name: "VIP", quantity: 2, unitPrice: 12_000, subtotal: 24_000 },
          { item: "ticket_type", id: "ga", name: "Standing", quantity: 1, unitPrice: 4_500, subtotal: 4_500 },
        ]);
        assert.equal(order.total, 28_500);
        assert.equal(order.currency, "USD");
        assert.deepEqual(await store.getOrder(order.id), order);
        const held = value<Hold>(await one(plan.id, hold("b", items(["ga", 3]))));
        assert.equal(held.total, 13_500);
        assert.deepEqual(await store.getHold(held.id), held);
        // Several types and a plain quantity: the buyer must say which.
        assert.equal(refusal(await one(plan.id, purchase("c", general(1)))), "invalid_request");
      });

      it("keeps each ticket type inside its quota and the event inside its capacity", async () => {
        const plan = await createEvent(typed);
        value(await one(plan.id, purchase("a", items(["vip", 2]))));
        value(await one(plan.id, hold("b", items(["vip", 1]))));
        assert.equal(refusal(await one(plan.id, purchase("c", items(["vip", 1])))), "sold_out");
        assert.equal(refusal(await one(plan.id, purchase("c", items(["vip", 3])))), "invalid_request");
        value(await one(plan.id, purchase("c", items(["ga", 5]))));
        assert.equal(refusal(await one(plan.id, purchase("d", items(["ga", 3])))), "sold_out");
        value(await one(plan.id, purchase("d", items(["ga", 2]))));
        assert.deepEqual(await counters(plan.id), { sold: 9, held: 1, available: 0 });
      });

      it("confirms a hold with its payment reference and its lines; extends it within its lifetime", async () => {
        const plan = await createEvent({ ...typed, maxHoldLifetimeSeconds: 1800 });
        const held = value<Hold>(await one(plan.id, hold("a", items(["vip", 1], ["ga", 1]), 600)));
        const extend = (ttlSeconds: number): Command => ({
          type: "extend-hold",
          holdId: held.id,
          ttlSeconds,
        });
        const later = value<Hold>(await one(plan.id, extend(900), at(300)));
        assert.equal(later.expiresAt, at(1200).toISOString());
        const capped = value<Hold>(await one(plan.id, extend(1800), at(600)));
        assert.equal(capped.expiresAt, at(1800).toISOString(), "never past creation + 1800 s");
        assert.equal(refusal(await one(plan.id, extend(60), at(700))), "hold_extension_limit");
        const order = value<Order>(
          await one(
            plan.id,
            { type: "confirm-hold", holdId: held.id, paymentReference: "pi_3Nx9", idempotency: null },
            at(900),
          ),
        );
        assert.equal(order.paymentReference, "pi_3Nx9");
        assert.deepEqual(order.lines, held.lines);
        assert.equal(order.total, 16_500);
        assert.equal((await store.getOrder(order.id))?.paymentReference, "pi_3Nx9");
      });

      it("refuses a confirm or an extension after expiry with hold_expired, and gives the tickets back", async () => {
        const plan = await createEvent(typed);
        const held = value<Hold>(await one(plan.id, hold("a", items(["vip", 2]), 60)));
        const confirm: Command = {
          type: "confirm-hold",
          holdId: held.id,
          paymentReference: "pi_late",
          idempotency: null,
        };
        assert.equal(refusal(await one(plan.id, confirm, at(61))), "hold_expired");
        assert.equal(
          refusal(await one(plan.id, { type: "extend-hold", holdId: held.id, ttlSeconds: 60 }, at(62))),
          "hold_expired",
        );
        assert.deepEqual(await counters(plan.id), { sold: 0, held: 0, available: 10 });
        const report = await store.getReport(plan.id);
        assert.deepEqual(
          report?.tiers.map((t) => [t.id, t.sold, t.held]),
          [
            ["vip", 0, 0],
            ["ga", 0, 0],
          ],
        );
      });

      it("reports sold, held, available and revenue by ticket type", async () => {
        const plan = await createEvent(typed);
        const a = value<Order>(await one(plan.id, purchase("a", items(["vip", 2], ["ga", 1]))));
        value(await one(plan.id, purchase("b", items(["ga", 3]))));
        value(await one(plan.id, hold("c", items(["vip", 1]))));
        value(await one(plan.id, { type: "cancel-order", orderId: a.id }));
        const report = await store.getReport(plan.id);
        assert.deepEqual(report, {
          eventId: plan.id,
          name: "Night 1",
          state: "on_sale",
          currency: "USD",
          capacity: 10,
          sold: 3,
          held: 1,
          available: 6,
          revenue: 13_500,
          tiers: [
            {
              item: "ticket_type",
              id: "vip",
              name: "VIP",
              unitPrice: 12_000,
              quota: 3,
              sold: 0,
              held: 1,
              available: 2,
              revenue: 0,
            },
            {
              item: "ticket_type",
              id: "ga",
              name: "Standing",
              unitPrice: 4_500,
              quota: null,
              sold: 3,
              held: 0,
              available: 6,
              revenue: 13_500,
            },
          ],
        });
        assert.equal(await store.getReport(newEventId()), null);
      });

      it("prices seats by zone and reports each zone", async () => {
        const plan = await createEvent({
          capacity: undefined,
          seating: {
            sections: [
              { name: "A", rows: 3, seatsPerRow: 2 },
              { name: "B", rows: 1, seatsPerRow: 2 },
            ],
          },
          price: 1_000,
          priceZones: [
            { id: "front", name: "Front rows", price: 8_000, section: "A", rows: { from: 1, to: 1 } },
            { id: "balcony", name: "Balcony", price: 3_000, section: "B" },
          ],
        });
        const order = value<Order>(await one(plan.id, purchase("a", seated("A-1-1", "A-3-2", "B-1-1"))));
        assert.deepEqual(
          order.lines.map((l) => [l.item, l.id, l.quantity, l.unitPrice, l.subtotal]),
          [
            ["price_zone", "front", 1, 8_000, 8_000],
            ["price_zone", "balcony", 1, 3_000, 3_000],
            ["price_zone", "default", 1, 1_000, 1_000],
          ],
        );
        assert.equal(order.total, 12_000);
        const report = await store.getReport(plan.id);
        assert.deepEqual(
          report?.tiers.map((t) => [t.id, t.quota, t.sold, t.available, t.revenue]),
          [
            ["front", 2, 1, 1, 8_000],
            ["balcony", 2, 1, 1, 3_000],
            ["default", 4, 1, 3, 1_000],
          ],
        );
        assert.equal(report?.revenue, 12_000);
      });
    });

    describe("against the reference model (property)", () => {
      type Op =
        | { op: "purchase"; customer: number; n: number; seats: number[]; split: number }
        | { op: "hold"; customer: number; n: number; seats: number[]; split: number; ttl: number }
        | { op: "confirm" | "release" | "cancel"; target: number }
        | { op: "tick"; seconds: number }
        | { op: "pause" }
        | { op: "resume" }
        | { op: "capacity"; capacity: number };
      const ops: fc.Arbitrary<Op[]> = fc.array(
        fc.oneof(
          fc.record({
            op: fc.constant("purchase" as const),
            customer: fc.nat(3),
            n: fc.integer({ min: 1, max: 4 }),
            seats: fc.array(fc.nat(7), { minLength: 1, maxLength: 3 }),
            split: fc.nat(4),
          }),
          fc.record({
            op: fc.constant("hold" as const),
            customer: fc.nat(3),
            n: fc.integer({ min: 1, max: 4 }),
            seats: fc.array(fc.nat(7), { minLength: 1, maxLength: 3 }),
            split: fc.nat(4),
            ttl: fc.integer({ min: 30, max: 90 }),
          }),
          fc.record({
            op: fc.constantFrom("confirm" as const, "release" as const, "cancel" as const),
            target: fc.nat(20),
          }),
          fc.record({ op: fc.constant("tick" as const), seconds: fc.integer({ min: 1, max: 60 }) }),
          // An admin's action or edit, between the buyers' commands.
          fc.record({ op: fc.constantFrom("pause" as const, "resume" as const) }),
          fc.record({ op: fc.constant("capacity" as const), capacity: fc.integer({ min: 1, max: 12 }) }),
        ),
        { maxLength: 25 },
      );

      for (const kind of ["general", "seated"] as const) {
        it(`answers like the model for random ${kind} sequences`, async () => {
          await fc.assert(
            fc.asyncProperty(ops, async (sequence) => {
              // Two ticket types (one with a quota, one with its own max per order) or two price zones.
              const request: NewEventRequest =
                kind === "general"
                  ? {
                      name: "prop",
                      capacity: 8,
                      maxPerOrder: 4,
                      maxPerCustomer: 5,
                      ticketTypes: [
                        { id: "a", name: "A", price: 1500, quota: 5 },
                        { id: "b", name: "B", price: 700, maxPerOrder: 3 },
                      ],
                    }
                  : {
                      name: "prop",
                      seating: { sections: [{ name: "A", rows: 2, seatsPerRow: 4 }] },
                      maxPerOrder: 4,
                      maxPerCustomer: 5,
                      price: 900,
                      priceZones: [
                        { id: "front", name: "Front", price: 2500, section: "A", rows: { from: 1, to: 1 } },
                      ],
                    };
              const plan = planEvent(request, newEventId(), T0);
              await store.createEvent(plan);
              const model = new Inventory(plan);
              const seatIds = model.allSeats();
              const holds: [string, string][] = []; // [store id, model id]
              const orders: [string, string][] = [];
              let now = T0.getTime();
              let modelIds = 0;
              for (const op of sequence) {
                const when = new Date(now);
                const selection = (n: number, seats: number[], split: number): Selection => {
                  if (kind === "seated") return seated(...new Set(seats.map((i) => seatIds[i] as string)));
                  const a = Math.min(split, n);
                  const items = [
                    { ticketTypeId: "a", quantity: a },
                    { ticketTypeId: "b", quantity: n - a },
                  ].filter((item) => item.quantity > 0);
                  return { quantity: n, seats: null, items };
                };
                let got: Outcome | undefined;
                let want: { ok: boolean; code?: string };
                let wantValue: Order | Hold | null = null;
                if (op.op === "tick") {
                  now += op.seconds * 1000;
                  model.expireHolds(new Date(now));
                  await store.expireHolds(new Date(now), 1000);
                  continue;
                }
                if (op.op === "pause" || op.op === "resume" || op.op === "capacity") {
                  const modelRefusal =
                    op.op === "capacity" ? model.update({ capacity: op.capacity }) : model.act(op.op);
                  const changed =
                    op.op === "capacity"
                      ? await store.updateEvent(plan.id, { capacity: op.capacity })
                      : await store.changeEventStatus(plan.id, op.op);
                  assert.ok(changed);
                  assert.deepEqual(
                    changed.ok ? null : changed.refusal.code,
                    modelRefusal?.code ?? null,
                    `after ${JSON.stringify(op)}`,
                  );
                  assert.equal(changed.ok && changed.event.capacity, changed.ok && model.plan.capacity);
                  continue;
                }
                if (op.op === "purchase" || op.op === "hold") {
                  const sel = selection(op.n, op.seats, op.split);
                  const modelId = `m${modelIds++}`;
                  const r =
                    op.op === "purchase"
                      ? model.purchase(modelId, `c${op.customer}`, sel, when)
                      : model.hold(modelId, `c${op.customer}`, sel, op.ttl, when);
                  want = r.ok ? { ok: true } : { ok: false, code: r.refusal.code };
                  wantValue = r.ok ? r.value : null;
                  got = await one(
                    plan.id,
                    op.op === "purchase"
                      ? purchase(`c${op.customer}`, sel)
                      : hold(`c${op.customer}`, sel, op.ttl),
                    when,
                  );
                  if (got.ok && r.ok)
                    (op.op === "purchase" ? orders : holds).push([(got.value as Order).id, modelId]);
                } else {
                  const list = op.op === "cancel" ? orders : holds;
                  const pair = list[op.target % Math.max(1, list.length)];
                  if (!pair) continue;
                  const [storeId, modelId] = pair;
                  if (op.op === "confirm") {
                    const orderModelId = `m${modelIds++}`;
                    const r = model.confirmHold(modelId, orderModelId, when);
                    want = r.ok ? { ok: true } : { ok: false, code: r.refusal.code };
                    got = await one(
                      plan.id,
                      { type: "confirm-hold", holdId: storeId, idempotency: null },
                      when,
                    );
                    if (got.ok && r.ok) orders.push([(got.value as Order).id, orderModelId]);
                  } else if (op.op === "release") {
                    const r = model.releaseHold(modelId);
                    want = { ok: r.ok };
                    got = await one(plan.id, { type: "release-hold", holdId: storeId }, when);
                  } else {
                    const r = model.cancelOrder(modelId, when);
                    want = { ok: r.ok };
                    got = await one(plan.id, { type: "cancel-order", orderId: storeId }, when);
                  }
                }
                assert.deepEqual(
                  got.ok ? { ok: true } : { ok: false, code: got.refusal.code },
                  want,
                  `after ${JSON.stringify(op)}`,
                );
                if (got.ok && wantValue) {
                  // The same lines and total as the model: the event's prices, summed.
                  const taken = got.value as Order | Hold;
                  assert.deepEqual([taken.lines, taken.total], [wantValue.lines, wantValue.total]);
                  assert.equal(
                    taken.total,
                    taken.lines.reduce((sum, line) => sum + line.subtotal, 0),
                  );
                }
                const event = await store.getEvent(plan.id);
                assert.deepEqual(
                  { sold: event?.sold, held: event?.held },
                  { sold: model.sold, held: model.held },
                );
                const report = await store.getReport(plan.id);
                assert.deepEqual(
                  report?.tiers.map((t) => [t.id, t.sold, t.held]),
                  model.plan.tiers.map((t) => [
                    t.id,
                    model.tierCounters(t.id).sold,
                    model.tierCounters(t.id).held,
                  ]),
                );
              }
            }),
            { numRuns: 25 },
          );
        });
      }
    });
    /**
     * One event beside its reference model, for the batch properties: turns random ops into commands and
     * the answers the model expects, records what the store made, and compares counters and seats.
     */
    async function modelledEvent(kind: "general" | "seated") {
      const request: NewEventRequest =
        kind === "general"
          ? { name: "batch", capacity: 10, maxPerOrder: 4, maxPerCustomer: 5 }
          : {
              name: "batch",
              seating: { sections: [{ name: "A", rows: 2, seatsPerRow: 5 }] },
              maxPerOrder: 4,
              maxPerCustomer: 5,
            };
      const plan = planEvent(request, newEventId(), BATCH_T0);
      await store.createEvent(plan);
      const model = new Inventory(plan);
      const seatIds = model.allSeats();
      const holds: [string, string][] = []; // [store id, model id], committed ones only
      const orders: [string, string][] = [];
      const answered = new Map<string, { fingerprint: string; answer: string }>();
      const keyedCommands: Command[] = [];
      let modelIds = 0;
      type Created = { list: [string, string][]; modelId: string } | null;

      /** The batch's commands and the answers the model gives them, applied to the model. */
      function prepare(batch: readonly BatchOp[], now: Date) {
        const commands: Command[] = [];
        const expected: { answer: string; replayed: boolean }[] = [];
        const created: Created[] = [];
        for (const op of batch) {
          if (op.op === "retry") {
            const again = keyedCommands[op.index % Math.max(1, keyedCommands.length)];
            const idempotency = again && "idempotency" in again ? again.idempotency : null;
            const first = idempotency ? answered.get(idempotency.key) : undefined;
            if (!again || !idempotency || !first) continue;
            commands.push(again);
            expected.push({
              answer: first.fingerprint === idempotency.fingerprint ? first.answer : "idempotency_key_reused",
              replayed: first.fingerprint === idempotency.fingerprint,
            });
            created.push(null);
            continue;
          }
          const fingerprint = JSON.stringify(op);
          const key = op.key === null ? null : `k${op.key}`;
          const idempotency = key === null ? null : { key, fingerprint };
          let command: Command;
          let run: () => {
            ok: boolean;
            code?: string;
            made?: [string, string][];
            modelId?: string;
          };
          if (!("target" in op)) {
            const selection: Selection =
              kind === "general"
                ? { quantity: op.n, seats: null }
                : (() => {
                    const seats = [...new Set(op.seats.map((i) => seatIds[i] as string))];
                    return { quantity: seats.length, seats };
                  })();
            const customerId = `c${op.customer}`;
            command =
              op.op === "purchase"
                ? { type: "purchase", customerId, selection, idempotency }
                : { type: "hold", customerId, selection, ttlSeconds: 600, idempotency };
            run = () => {
              const modelId = `m${modelIds++}`;
              const r =
                op.op === "purchase"
                  ? model.purchase(modelId, customerId, selection, now)
                  : model.hold(modelId, customerId, selection, 600, now);
              return r.ok
                ? { ok: true, made: op.op === "purchase" ? orders : holds, modelId }
                : { ok: false, code: r.refusal.code };
            };
          } else {
            const list = op.op === "cancel" ? orders : holds;
            const pair = list[op.target % Math.max(1, list.length)];
            if (!pair) continue;
            const [storeId, modelId] = pair;
            if (op.op === "confirm") {
              command = { type: "confirm-hold", holdId: storeId, idempotency };
              run = () => {
                const orderModelId = `m${modelIds++}`;
                const r = model.confirmHold(modelId, orderModelId, now);
                return r.ok
                  ? { ok: true, made: orders, modelId: orderModelId }
                  : { ok: false, code: r.refusal.code };
              };
            } else if (op.op === "release") {
              command = { type: "release-hold", holdId: storeId };
              run = () => ({ ok: model.releaseHold(modelId).ok });
            } else {
              command = { type: "cancel-order", orderId: storeId };
              run = () => ({ ok: model.cancelOrder(modelId, now).ok });
            }
          }
          commands.push(command);
          if ("idempotency" in command && command.idempotency !== null) keyedCommands.push(command);
          const keyed = "idempotency" in command && command.idempotency !== null ? key : null;
          const first = keyed === null ? undefined : answered.get(keyed);
          if (first) {
            const same = first.fingerprint === fingerprint;
            expected.push({ answer: same ? first.answer : "idempotency_key_reused", replayed: same });
            created.push(null);
            continue;
          }
          const r = run();
          const answer = r.ok ? "ok" : (r.code as string);
          if (keyed !== null) answered.set(keyed, { fingerprint, answer });
          expected.push({ answer, replayed: false });
          created.push(r.made && r.modelId ? { list: r.made, modelId: r.modelId } : null);
        }
        return { commands, expected, created };
      }

      /** Compares the store's answers with the model's and remembers what the store made. */
      async function check(
        outcomes: readonly Outcome[],
        prepared: { expected: { answer: string; replayed: boolean }[]; created: Created[] },
        label: string,
      ) {
        assert.deepEqual(
          outcomes.map((o) => ({ answer: o.ok ? "ok" : o.refusal.code, replayed: o.replayed })),
          prepared.expected,
          label,
        );
        outcomes.forEach((outcome, i) => {
          const made = prepared.created[i];
          if (outcome.ok && made) made.list.push([(outcome.value as Order | Hold).id, made.modelId]);
        });
        const event = await store.getEvent(plan.id);
        assert.deepEqual(
          { sold: event?.sold, held: event?.held },
          { sold: model.sold, held: model.held },
          label,
        );
      }

      async function checkSeats() {
        if (kind !== "seated") return;
        const map = await store.getSeatMap(plan.id);
        const taken = map?.sections
          .flatMap((s) => s.rows.flatMap((r) => r.seats))
          .filter((s) => s.status !== "available");
        assert.deepEqual(
          taken?.map((s) => s.id).sort(),
          seatIds.filter((id) => model.seatOwner(id) !== undefined).sort(),
        );
      }

      return { plan, prepare, check, checkSeats };
    }

    describe("batches against the reference model (property)", () => {
      for (const kind of ["general", "seated"] as const) {
        it(`answers like the model for random ${kind} batches`, async () => {
          await fc.assert(
            fc.asyncProperty(
              fc.array(fc.array(batchOpArbitrary, { minLength: 1, maxLength: 8 }), {
                minLength: 1,
                maxLength: 6,
              }),
              async (batches) => {
                const event = await modelledEvent(kind);
                for (const [b, batch] of batches.entries()) {
                  const now = new Date(BATCH_T0.getTime() + b * 1000);
                  const prepared = event.prepare(batch, now);
                  const outcomes = await store.execute(event.plan.id, prepared.commands, null, now);
                  await event.check(outcomes, prepared, `batch ${b}: ${JSON.stringify(batch)}`);
                }
                await event.checkSeats();
              },
            ),
            { numRuns: 30 },
          );
        });
      }
    });

    describe("several events in one call (executeMany)", () => {
      const many = (batches: EventBatch[], now = T0) => {
        const executeMany = store.executeMany;
        assert.ok(executeMany, "the store has executeMany");
        return executeMany.call(store, batches, now);
      };
      /** An answer without what differs between two runs of the same command (ids, instants). */
      const shape = (outcome: Outcome) =>
        outcome.ok
          ? {
              ok: true,
              replayed: outcome.replayed,
              quantity: (outcome.value as Order | null)?.quantity,
              status: outcome.value?.status,
              total: outcome.value?.total,
            }
          : { ok: false, replayed: outcome.replayed, code: outcome.refusal.code };
      /** A batch with a sale, a refusal, a hold, its confirm, a replay and a reused key. */
      const mixed = (customer: string, length = 6): Command[] =>
        [
          purchase(customer, general(2), `${customer}-a`, "fp-a"),
          purchase(customer, general(9)),
          hold(customer, general(1)),
          purchase(customer, general(2), `${customer}-a`, "fp-a"),
          purchase(customer, general(1), `${customer}-a`, "fp-other"),
          purchase(`${customer}-2`, general(3)),
        ].slice(0, length);

      it("answers each part exactly as execute() alone would, an unknown event included", async (t) => {
        if (!store.executeMany) return t.skip("no executeMany");
        const alone = [await createEvent({ maxPerOrder: 4 }), await createEvent({ maxPerOrder: 4 })];
        const together = [await createEvent({ maxPerOrder: 4 }), await createEvent({ maxPerOrder: 4 })];
        const expected = await Promise.all(
          alone.map(async (plan, i) =>
            (await store.execute(plan.id, mixed(`c${i}`, 6 - i * 2), null, T0)).map(shape),
          ),
        );
        const missing = newEventId(T0.getTime());
        const results = await many([
          { eventId: together[0]!.id, commands: mixed("c0"), guard: null },
          { eventId: missing, commands: [purchase("c", general(1))], guard: null },
          { eventId: together[1]!.id, commands: mixed("c1", 4), guard: null },
        ]);
        assert.equal(results.length, 3);
        const [first, unknown, second] = results;
        assert.ok(first?.ok && unknown?.ok && second?.ok, JSON.stringify(results));
        assert.deepEqual(first.outcomes.map(shape), expected[0]);
        assert.deepEqual(second.outcomes.map(shape), expected[1]);
        assert.deepEqual(unknown.outcomes.map(refusal), ["event_not_found"]);
        for (const [i, plan] of together.entries()) {
          assert.deepEqual(await counters(plan.id), await counters(alone[i]!.id));
          // What was stored is what execute() stores: the replay and the hold are found again.
          const again = await one(plan.id, purchase(`c${i}`, general(2), `c${i}-a`, "fp-a"), at(1));
          assert.equal(again.replayed, true);
        }
      });

      it("fails a fenced-out part and a part whose lease was lost alone; the others commit", async (t) => {
        if (!store.executeMany) return t.skip("no executeMany");
        const [fenced, lost, fine] = [await createEvent(), await createEvent(), await createEvent()];
        const guardOf = (plan: EventPlan, fence: number, signal = new AbortController().signal) => ({
          lockKey: `event:${plan.id}`,
          fence,
          signal,
        });
        value(await one(fenced.id, purchase("c", general(1)), T0, guardOf(fenced, 9)));
        const aborted = new AbortController();
        aborted.abort();
        const results = await many([
          { eventId: fenced.id, commands: [purchase("d", general(2))], guard: guardOf(fenced, 8) },
          {
            eventId: lost.id,
            commands: [purchase("d", general(2))],
            guard: guardOf(lost, 5, aborted.signal),
          },
          { eventId: fine.id, commands: [purchase("d", general(2))], guard: guardOf(fine, 5) },
        ]);
        const [a, b, c] = results;
        assert.ok(a && !a.ok && b && !b.ok && c?.ok, JSON.stringify(results));
        assert.equal((a.error as { code?: string }).code, "STALE_FENCE");
        assert.equal((b.error as { code?: string }).code, "LOCK_LOST");
        value(c.outcomes[0] as Outcome);
        assert.deepEqual(await counters(fenced.id), { sold: 1, held: 0, available: 9 });
        assert.deepEqual(await counters(lost.id), { sold: 0, held: 0, available: 10 });
        assert.deepEqual(await counters(fine.id), { sold: 2, held: 0, available: 8 });
        // The refused part stored nothing, not even its fence: the same fence is still good.
        value(await one(lost.id, purchase("d", general(1)), T0, guardOf(lost, 5)));
      });

      it("expires holds made through it, once their time is up", async (t) => {
        if (!store.executeMany) return t.skip("no executeMany");
        const plans = [await createEvent(), await createEvent(), await createEvent()];
        const results = await many(
          plans.map((plan) => ({ eventId: plan.id, commands: [hold("h", general(2), 30)], guard: null })),
        );
        for (const result of results) assert.ok(result.ok && result.outcomes[0]?.ok, JSON.stringify(result));
        assert.ok((await store.expireHolds(at(60), 100)) >= 3);
        for (const plan of plans)
          assert.deepEqual(await counters(plan.id), { sold: 0, held: 0, available: 10 });
      });

      for (const kind of ["general", "seated"] as const) {
        it(`answers like the model for random cross-event ${kind} batches`, async (t) => {
          if (!store.executeMany) return t.skip("no executeMany");
          await fc.assert(
            fc.asyncProperty(
              fc.array(
                fc.array(fc.array(batchOpArbitrary, { minLength: 0, maxLength: 6 }), {
                  minLength: 3,
                  maxLength: 3,
                }),
                { minLength: 1, maxLength: 5 },
              ),
              async (rounds) => {
                const events = [
                  await modelledEvent(kind),
                  await modelledEvent(kind),
                  await modelledEvent(kind),
                ];
                for (const [r, round] of rounds.entries()) {
                  const now = new Date(BATCH_T0.getTime() + r * 1000);
                  const parts = round
                    .map((batch, i) => ({ event: events[i]!, prepared: events[i]!.prepare(batch, now) }))
                    .filter((part) => part.prepared.commands.length > 0);
                  if (parts.length === 0) continue;
                  const results = await many(
                    parts.map(({ event, prepared }) => ({
                      eventId: event.plan.id,
                      commands: prepared.commands,
                      guard: null,
                    })),
                    now,
                  );
                  assert.equal(results.length, parts.length);
                  for (const [i, { event, prepared }] of parts.entries()) {
                    const result = results[i];
                    assert.ok(result?.ok, JSON.stringify(result));
                    await event.check(
                      result.outcomes,
                      prepared,
                      `round ${r}, event ${i}: ${JSON.stringify(round)}`,
                    );
                  }
                }
                for (const event of events) await event.checkSeats();
              },
            ),
            { numRuns: 20 },
          );
        });
      }
    });

    describePoisonContract(() => store);
  });
}
