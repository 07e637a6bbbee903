/**
 * The contract of Store.executeMany(), written once for every backend that has it:
 * `describeExecuteManyContract(name, factory, options)`, with the store contract's fixture factory.
 *
 * - Each part answers as execute() alone would: a property test sends random batches for several events
 *   through one executeMany() each, and the same batches for twin events through one execute() per
 *   event, and requires the same answers (ids aside) and the same counters.
 * - A part that fails (a stale fence, a lost lease) fails alone: the others commit, it changes nothing.
 * - A failed commit commits nothing of any part (`options.commitBreaker`: a backend's way to make its
 *   commit fail for a transaction that wrote an order for one customer id).
 */
import { getEventListeners } from "node:events";
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import type { EventBatch, EventBatchResult, Store } from "../../src/store/store.js";
import type { WriteGuard } from "../../src/domain/write-guard.js";
import type { EventPlan, NewEventRequest } from "../../src/domain/event.js";
import { planEvent } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import type { Command, Hold, Order, Outcome, Selection } from "../../src/domain/sale.js";
import type { StoreFixture } from "./store-contract.js";

/** Makes the store's commits fail while installed, for transactions that sold to `customerId`. */
export interface CommitBreaker {
  customerId: string;
  install(): Promise<void>;
  remove(): Promise<void>;
}

export interface ExecuteManyContractOptions {
  skip?: string;
  /** Given the fixture made for this suite; absent: the commit-failure case is not registered. */
  commitBreaker?: (fixture: StoreFixture) => CommitBreaker;
  /**
   * The store keeps one fence per lock key for every event (PostgreSQL, SQLite's single file), so a
   * lower fence than another part's for the same key is stale within one call. A file per event keeps
   * the fences each file has seen, which is what protects that event's rows; this case is not
   * registered for it.
   */
  fencesShared?: boolean;
}

const T0 = new Date("2032-05-01T10:00:00.000Z");
const at = (seconds: number) => new Date(T0.getTime() + seconds * 1000);

type Op =
  | { op: "purchase" | "hold"; customer: number; n: number; seats: number[]; key: number | null }
  | { op: "confirm" | "release" | "cancel" | "extend"; target: number; key: number | null }
  | { op: "retry"; index: number };

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 4,
    arbitrary: fc.record({
      op: fc.constantFrom("purchase" as const, "hold" as const),
      customer: fc.nat(3),
      n: fc.integer({ min: 1, max: 3 }),
      seats: fc.array(fc.nat(7), { minLength: 1, maxLength: 2 }),
      key: fc.option(fc.nat(4), { nil: null }),
    }),
  },
  fc.record({
    op: fc.constantFrom("confirm" as const, "release" as const, "cancel" as const, "extend" as const),
    target: fc.nat(20),
    key: fc.option(fc.nat(4), { nil: null }),
  }),
  fc.record({ op: fc.constant("retry" as const), index: fc.nat(20) }),
);

/** An outcome without what differs between twin events (generated ids, the event's id). */
function comparable(outcome: Outcome): unknown {
  return JSON.parse(JSON.stringify(outcome), (key: string, value: unknown) =>
    key === "id" || key === "eventId" || key === "holdId" || key === "orderId" ? undefined : value,
  ) as unknown;
}

export function describeExecuteManyContract(
  name: string,
  factory: () => Promise<StoreFixture>,
  options: ExecuteManyContractOptions = {},
) {
  describe(`executeMany contract: ${name}`, { skip: options.skip }, () => {
    let fixture: StoreFixture;
    let store: Store;
    let executeMany: NonNullable<Store["executeMany"]>;

    before(async () => {
      fixture = await factory();
      store = fixture.store;
      assert.ok(store.executeMany, `${name} has executeMany`);
      executeMany = store.executeMany.bind(store);
    });
    after(async () => {
      await fixture?.cleanup();
    });

    async function createEvent(request: Partial<NewEventRequest> = {}): Promise<EventPlan> {
      const defaults = request.seating ? { name: "Many" } : { name: "Many", capacity: 10 };
      const plan = planEvent({ ...defaults, ...request }, newEventId(T0.getTime()), T0);
      await store.createEvent(plan);
      return plan;
    }
    const general = (quantity: number): Selection => ({ quantity, seats: null });
    const purchase = (customerId: string, selection: Selection, key?: string): Command => ({
      type: "purchase",
      customerId,
      selection,
      idempotency: key ? { key, fingerprint: "fp" } : null,
    });
    async function counters(eventId: string) {
      const event = await store.getEvent(eventId);
      assert.ok(event);
      return { sold: event.sold, held: event.held };
    }
    function outcomesOf(result: EventBatchResult | undefined): Outcome[] {
      assert.ok(
        result?.ok,
        `expected the part to commit, got ${String(result && !result.ok && result.error)}`,
      );
      return result.outcomes;
    }
    function errorCodeOf(result: EventBatchResult | undefined): unknown {
      assert.ok(result && !result.ok, "expected the part to fail");
      return (result.error as { code?: unknown }).code;
    }

    it("answers each part as execute() alone would, with the same counters", async () => {
      // Each run: EVENTS events through executeMany, their twins through execute(), same batches.
      const EVENTS = 3;
      await fc.assert(
        fc.asyncProperty(
          fc.array(
            fc.array(fc.array(opArbitrary, { maxLength: 6 }), { minLength: EVENTS, maxLength: EVENTS }),
            {
              minLength: 1,
              maxLength: 4,
            },
          ),
          fc.boolean(),
          async (rounds, seatedEvents) => {
            const request: Partial<NewEventRequest> = seatedEvents
              ? { maxPerCustomer: 4, seating: { sections: [{ name: "A", rows: 1, seatsPerRow: 8 }] } }
              : { capacity: 8, maxPerCustomer: 4 };
            const many: EventPlan[] = [];
            const alone: EventPlan[] = [];
            for (let e = 0; e < EVENTS; e++) {
              many.push(await createEvent(request));
              alone.push(await createEvent(request));
            }
            // Per event and per side: the holds and orders made so far, and the commands sent so far.
            const made = {
              many: many.map(() => [] as (Hold | Order)[]),
              alone: alone.map(() => [] as (Hold | Order)[]),
            };
            const sent = many.map(() => [] as Op[]);
            const seatIds = (seats: number[]) => seats.map((s) => `A-1-${s + 1}`);
            const commandOf = (side: "many" | "alone", e: number, op: Op, plan: EventPlan): Command => {
              if (op.op === "retry") {
                const earlier = sent[e]?.[op.index % Math.max(1, sent[e]?.length ?? 1)];
                return earlier && earlier.op !== "retry"
                  ? commandOf(side, e, earlier, plan)
                  : purchase("r", general(1));
              }
              const idempotency = op.key === null ? null : { key: `k${op.key}-${op.op}`, fingerprint: op.op };
              if (op.op === "purchase" || op.op === "hold") {
                const selection = seatedEvents
                  ? { quantity: new Set(op.seats).size, seats: [...new Set(seatIds(op.seats))] }
                  : general(op.n);
                const customerId = `c${op.customer}`;
                return op.op === "purchase"
                  ? { type: "purchase", customerId, selection, idempotency }
                  : { type: "hold", customerId, selection, ttlSeconds: 120, idempotency };
              }
              const list = made[side][e] ?? [];
              const target = list[(op as Extract<Op, { target: number }>).target % Math.max(1, list.length)];
              const id = target?.id ?? "missing";
              switch (op.op) {
                case "confirm":
                  return { type: "confirm-hold", holdId: id, idempotency };
                case "release":
                  return { type: "release-hold", holdId: id };
                case "extend":
                  return { type: "extend-hold", holdId: id, ttlSeconds: 300 };
                case "cancel":
                  return { type: "cancel-order", orderId: id };
              }
            };
            for (const [r, round] of rounds.entries()) {
              const now = at(r);
              const batches: EventBatch[] = many.map((plan, e) => ({
                eventId: plan.id,
                commands: (round[e] ?? []).map((op) => commandOf("many", e, op, plan)),
                guard: null,
              }));
              const aloneCommands = alone.map((plan, e) =>
                (round[e] ?? []).map((op) => commandOf("alone", e, op, plan)),
              );
              const results = await executeMany(batches, now);
              assert.equal(results.length, EVENTS);
              for (let e = 0; e < EVENTS; e++) {
                const manyOutcomes = outcomesOf(results[e]);
                const aloneOutcomes = await store.execute(alone[e]!.id, aloneCommands[e]!, null, now);
                assert.deepEqual(manyOutcomes.map(comparable), aloneOutcomes.map(comparable));
                for (const [side, outcomes] of [
                  ["many", manyOutcomes],
                  ["alone", aloneOutcomes],
                ] as const) {
                  for (const outcome of outcomes) {
                    if (outcome.ok && !outcome.replayed) made[side][e]!.push(outcome.value as Hold | Order);
                  }
                }
                sent[e]!.push(...(round[e] ?? []));
                assert.deepEqual(await counters(many[e]!.id), await counters(alone[e]!.id));
              }
            }
          },
        ),
        { numRuns: 12 },
      );
    });

    it("fails a part with a stale fence alone: the others commit, it changes nothing", async () => {
      const [a, b, c] = [await createEvent(), await createEvent(), await createEvent()];
      const signal = new AbortController().signal;
      const keyOf = (plan: EventPlan) => `many-test:${plan.id}`;
      const guard = (plan: EventPlan, fence: number): WriteGuard => ({ lockKey: keyOf(plan), fence, signal });
      outcomesOf(
        (
          await executeMany(
            [{ eventId: b.id, commands: [purchase("x", general(1))], guard: guard(b, 9) }],
            T0,
          )
        )[0],
      );
      const results = await executeMany(
        [
          { eventId: a.id, commands: [purchase("x", general(2))], guard: guard(a, 1) },
          { eventId: b.id, commands: [purchase("x", general(2))], guard: guard(b, 8) },
          { eventId: c.id, commands: [purchase("x", general(3))], guard: guard(c, 1) },
        ],
        T0,
      );
      assert.equal(results.length, 3);
      assert.ok(outcomesOf(results[0])[0]?.ok);
      assert.equal(errorCodeOf(results[1]), "STALE_FENCE");
      assert.ok(outcomesOf(results[2])[0]?.ok);
      assert.deepEqual(await counters(a.id), { sold: 2, held: 0 });
      assert.deepEqual(await counters(b.id), { sold: 1, held: 0 }, "the fenced-out part wrote nothing");
      assert.deepEqual(await counters(c.id), { sold: 3, held: 0 });
      // Its fence is still the one applied: 8 stays refused, 9 goes through.
      const again = await executeMany(
        [
          { eventId: b.id, commands: [purchase("y", general(1))], guard: guard(b, 8) },
          { eventId: a.id, commands: [purchase("y", general(1))], guard: guard(a, 1) },
        ],
        T0,
      );
      assert.equal(errorCodeOf(again[0]), "STALE_FENCE");
      assert.ok(outcomesOf(again[1])[0]?.ok);
      const [fresh] = await executeMany(
        [{ eventId: b.id, commands: [purchase("y", general(1))], guard: guard(b, 9) }],
        T0,
      );
      assert.ok(outcomesOf(fresh)[0]?.ok);
    });

    it("commits parts that share one lock key and fence (the global scope); a stale fence fails them all", async () => {
      const [a, b, c] = [await createEvent(), await createEvent(), await createEvent()];
      const signal = new AbortController().signal;
      const lockKey = `many-global-${a.id}`;
      const guard = (fence: number): WriteGuard => ({ lockKey, fence, signal });
      const first = await executeMany(
        [a, b, c].map((plan) => ({
          eventId: plan.id,
          commands: [purchase("g", general(1))],
          guard: guard(5),
        })),
        T0,
      );
      for (const result of first) assert.ok(outcomesOf(result)[0]?.ok);
      const stale = await executeMany(
        [a, b].map((plan) => ({ eventId: plan.id, commands: [purchase("h", general(1))], guard: guard(4) })),
        T0,
      );
      for (const result of stale) assert.equal(errorCodeOf(result), "STALE_FENCE");
      assert.deepEqual(await Promise.all([a, b, c].map((plan) => counters(plan.id))), [
        { sold: 1, held: 0 },
        { sold: 1, held: 0 },
        { sold: 1, held: 0 },
      ]);
    });

    if (options.fencesShared) {
      it("refuses, within one call, a lower fence than another part's for the same key", async () => {
        const [a, c] = [await createEvent(), await createEvent()];
        const signal = new AbortController().signal;
        const lockKey = `many-mixed-${a.id}`;
        const guard = (fence: number): WriteGuard => ({ lockKey, fence, signal });
        const mixed = await executeMany(
          [
            { eventId: a.id, commands: [purchase("i", general(1))], guard: guard(6) },
            { eventId: c.id, commands: [purchase("i", general(1))], guard: guard(5) },
          ],
          T0,
        );
        assert.ok(outcomesOf(mixed[0])[0]?.ok);
        assert.equal(errorCodeOf(mixed[1]), "STALE_FENCE");
        assert.deepEqual(await Promise.all([a, c].map((plan) => counters(plan.id))), [
          { sold: 1, held: 0 },
          { sold: 0, held: 0 },
        ]);
      });
    }

    it("fails a part whose lease was lost alone, and answers an unknown event as execute() does", async () => {
      const [a, b] = [await createEvent(), await createEvent()];
      const lost = new AbortController();
      lost.abort();
      const results = await executeMany(
        [
          {
            eventId: a.id,
            commands: [purchase("x", general(1))],
            guard: { lockKey: "many-lost", fence: 1, signal: lost.signal },
          },
          { eventId: newEventId(T0.getTime()), commands: [purchase("x", general(1))], guard: null },
          { eventId: "not an id", commands: [purchase("x", general(1))], guard: null },
          { eventId: b.id, commands: [purchase("x", general(4)), purchase("y", general(99))], guard: null },
        ],
        T0,
      );
      assert.equal(errorCodeOf(results[0]), "LOCK_LOST");
      for (const unknown of [results[1], results[2]]) {
        const [outcome] = outcomesOf(unknown);
        assert.ok(outcome && !outcome.ok && outcome.refusal.code === "event_not_found");
      }
      const [sold, refused] = outcomesOf(results[3]);
      assert.ok(sold?.ok);
      assert.ok(refused && !refused.ok);
      assert.deepEqual(await counters(a.id), { sold: 0, held: 0 });
      assert.deepEqual(await counters(b.id), { sold: 4, held: 0 });
    });

    it("tells each lock grant's parts apart: the lost grant's fail, the held grant's commit", async () => {
      const plans = [await createEvent(), await createEvent(), await createEvent(), await createEvent()];
      const held = new AbortController().signal;
      const lost = new AbortController();
      lost.abort();
      // Interleaved, so that a flag read from the wrong part's grant shows.
      const results = await executeMany(
        plans.map((plan, i) => ({
          eventId: plan.id,
          commands: [purchase("m", general(1))],
          guard:
            i % 2 === 0
              ? { lockKey: `many-held-${plans[0]?.id}`, fence: 3, signal: held }
              : { lockKey: `many-lost-${plans[0]?.id}`, fence: 3, signal: lost.signal },
        })),
        T0,
      );
      assert.ok(outcomesOf(results[0])[0]?.ok);
      assert.equal(errorCodeOf(results[1]), "LOCK_LOST");
      assert.ok(outcomesOf(results[2])[0]?.ok);
      assert.equal(errorCodeOf(results[3]), "LOCK_LOST");
      assert.deepEqual(await Promise.all(plans.map((plan) => counters(plan.id))), [
        { sold: 1, held: 0 },
        { sold: 0, held: 0 },
        { sold: 1, held: 0 },
        { sold: 0, held: 0 },
      ]);
    });

    it("leaves no listener on a lock grant's signal and raises no warning, however many parts share it", async () => {
      const plans = await Promise.all(Array.from({ length: 12 }, () => createEvent()));
      const signal = new AbortController().signal;
      const warnings: Error[] = [];
      const onWarning = (warning: Error) => warnings.push(warning);
      process.on("warning", onWarning);
      try {
        const results = await executeMany(
          plans.map((plan) => ({
            eventId: plan.id,
            commands: [purchase("w", general(1))],
            guard: { lockKey: `many-listeners-${plans[0]?.id}`, fence: 9, signal },
          })),
          T0,
        );
        for (const result of results) assert.ok(outcomesOf(result)[0]?.ok);
        // process.emitWarning reports on a later tick.
        await new Promise((resolve) => setImmediate(resolve));
      } finally {
        process.off("warning", onWarning);
      }
      assert.deepEqual(
        warnings.map((warning) => `${warning.name}: ${warning.message}`),
        [],
      );
      assert.equal(getEventListeners(signal, "abort").length, 0);
    });

    if (options.commitBreaker)
      it("commits nothing of any part when the shared commit fails", async () => {
        const breaker = options.commitBreaker?.(fixture);
        assert.ok(breaker);
        const [a, b] = [await createEvent(), await createEvent()];
        await breaker.install();
        try {
          await assert.rejects(
            executeMany(
              [
                { eventId: a.id, commands: [purchase("x", general(2), "many-commit")], guard: null },
                { eventId: b.id, commands: [purchase(breaker.customerId, general(1))], guard: null },
              ],
              T0,
            ),
          );
        } finally {
          await breaker.remove();
        }
        assert.deepEqual(await counters(a.id), { sold: 0, held: 0 });
        assert.deepEqual(await counters(b.id), { sold: 0, held: 0 });
        // Nothing was kept for the key either: it sells now, not replayed.
        const [result] = await executeMany(
          [{ eventId: a.id, commands: [purchase("x", general(2), "many-commit")], guard: null }],
          T0,
        );
        const [outcome] = outcomesOf(result);
        assert.ok(outcome?.ok);
        assert.equal(outcome.replayed, false);
      });
  });
}
