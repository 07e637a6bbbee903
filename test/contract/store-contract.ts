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
import type { Store } from "../../src/store/store.js";
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

    describe("against the reference model (property)", () => {
      type Op =
        | { op: "purchase"; customer: number; n: number; seats: number[] }
        | { op: "hold"; customer: number; n: number; seats: number[]; ttl: number }
        | { op: "confirm" | "release" | "cancel"; target: number }
        | { op: "tick"; seconds: number };
      const ops: fc.Arbitrary<Op[]> = fc.array(
        fc.oneof(
          fc.record({
            op: fc.constant("purchase" as const),
            customer: fc.nat(3),
            n: fc.integer({ min: 1, max: 4 }),
            seats: fc.array(fc.nat(7), { minLength: 1, maxLength: 3 }),
          }),
          fc.record({
            op: fc.constant("hold" as const),
            customer: fc.nat(3),
            n: fc.integer({ min: 1, max: 4 }),
            seats: fc.array(fc.nat(7), { minLength: 1, maxLength: 3 }),
            ttl: fc.integer({ min: 30, max: 90 }),
          }),
          fc.record({
            op: fc.constantFrom("confirm" as const, "release" as const, "cancel" as const),
            target: fc.nat(20),
          }),
          fc.record({ op: fc.constant("tick" as const), seconds: fc.integer({ min: 1, max: 60 }) }),
        ),
        { maxLength: 25 },
      );

      for (const kind of ["general", "seated"] as const) {
        it(`answers like the model for random ${kind} sequences`, async () => {
          await fc.assert(
            fc.asyncProperty(ops, async (sequence) => {
              const request: NewEventRequest =
                kind === "general"
                  ? { name: "prop", capacity: 8, maxPerOrder: 4, maxPerCustomer: 5 }
                  : {
                      name: "prop",
                      seating: { sections: [{ name: "A", rows: 2, seatsPerRow: 4 }] },
                      maxPerOrder: 4,
                      maxPerCustomer: 5,
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
                const selection = (n: number, seats: number[]): Selection =>
                  kind === "general"
                    ? general(n)
                    : seated(...new Set(seats.map((i) => seatIds[i] as string)));
                let got: Outcome | undefined;
                let want: { ok: boolean; code?: string };
                if (op.op === "tick") {
                  now += op.seconds * 1000;
                  model.expireHolds(new Date(now));
                  await store.expireHolds(new Date(now), 1000);
                  continue;
                }
                if (op.op === "purchase" || op.op === "hold") {
                  const sel = selection(op.n, op.seats);
                  const modelId = `m${modelIds++}`;
                  const r =
                    op.op === "purchase"
                      ? model.purchase(modelId, `c${op.customer}`, sel, when)
                      : model.hold(modelId, `c${op.customer}`, sel, op.ttl, when);
                  want = r.ok ? { ok: true } : { ok: false, code: r.refusal.code };
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
                const event = await store.getEvent(plan.id);
                assert.deepEqual(
                  { sold: event?.sold, held: event?.held },
                  { sold: model.sold, held: model.held },
                );
              }
            }),
            { numRuns: 25 },
          );
        });
      }
    });
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

                for (const [b, batch] of batches.entries()) {
                  const now = new Date(BATCH_T0.getTime() + b * 1000);
                  const commands: Command[] = [];
                  const expected: { answer: string; replayed: boolean }[] = [];
                  const created: ({ list: [string, string][]; modelId: string } | null)[] = [];
                  for (const op of batch) {
                    if (op.op === "retry") {
                      const again = keyedCommands[op.index % Math.max(1, keyedCommands.length)];
                      const idempotency = again && "idempotency" in again ? again.idempotency : null;
                      const first = idempotency ? answered.get(idempotency.key) : undefined;
                      if (!again || !idempotency || !first) continue;
                      commands.push(again);
                      expected.push({
                        answer:
                          first.fingerprint === idempotency.fingerprint
                            ? first.answer
                            : "idempotency_key_reused",
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
                      expected.push({
                        answer: same ? first.answer : "idempotency_key_reused",
                        replayed: same,
                      });
                      created.push(null);
                      continue;
                    }
                    const r = run();
                    const answer = r.ok ? "ok" : (r.code as string);
                    if (keyed !== null) answered.set(keyed, { fingerprint, answer });
                    expected.push({ answer, replayed: false });
                    created.push(r.made && r.modelId ? { list: r.made, modelId: r.modelId } : null);
                  }
                  const outcomes = await store.execute(plan.id, commands, null, now);
                  assert.deepEqual(
                    outcomes.map((o) => ({ answer: o.ok ? "ok" : o.refusal.code, replayed: o.replayed })),
                    expected,
                    `batch ${b}: ${JSON.stringify(batch)}`,
                  );
                  outcomes.forEach((outcome, i) => {
                    const made = created[i];
                    if (outcome.ok && made)
                      made.list.push([(outcome.value as Order | Hold).id, made.modelId]);
                  });
                  const event = await store.getEvent(plan.id);
                  assert.deepEqual(
                    { sold: event?.sold, held: event?.held },
                    { sold: model.sold, held: model.held },
                  );
                }
                if (kind === "seated") {
                  const map = await store.getSeatMap(plan.id);
                  const taken = map?.sections
                    .flatMap((s) => s.rows.flatMap((r) => r.seats))
                    .filter((s) => s.status !== "available");
                  assert.deepEqual(
                    taken?.map((s) => s.id).sort(),
                    seatIds.filter((id) => model.seatOwner(id) !== undefined).sort(),
                  );
                }
              },
            ),
            { numRuns: 30 },
          );
        });
      }
    });
    describePoisonContract(() => store);
  });
}
