/**
 * Batches against the reference model: random batches of purchases, holds, confirms, releases, cancels
 * and repeated idempotency keys go through one `execute()` each, and every answer and the counters must
 * match the in-memory model applied one command after another. The contract's property test sends one
 * command per transaction; a server sends many (group commit), so this checks that one transaction with
 * many commands decides each exactly as if it were alone.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { planEvent, type NewEventRequest } from "../../../src/domain/event.js";
import { newEventId } from "../../../src/domain/ids.js";
import { Inventory } from "../../../src/domain/inventory.js";
import type { Command, Hold, Order, Selection } from "../../../src/domain/sale.js";
import { createTestPostgresStore, type TestPostgresStore } from "../../support/postgres-test-store.js";
import { postgresSkip } from "../../support/services.js";

type Op =
  | { op: "purchase" | "hold"; customer: number; n: number; seats: number[]; key: number | null }
  | { op: "confirm" | "release" | "cancel"; target: number; key: number | null }
  // Sends an earlier command with an idempotency key again, exactly (a client's retry).
  | { op: "retry"; index: number };

const T0 = new Date("2031-03-01T12:00:00.000Z");

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
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

describe("postgres store: batches against the reference model", { skip: await postgresSkip() }, () => {
  let fixture: TestPostgresStore;
  before(async () => {
    fixture = await createTestPostgresStore("batches");
  });
  after(async () => {
    await fixture?.cleanup();
  });

  for (const kind of ["general", "seated"] as const) {
    it(`answers like the model for random ${kind} batches`, async () => {
      const { store } = fixture;
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.array(opArbitrary, { minLength: 1, maxLength: 8 }), { minLength: 1, maxLength: 6 }),
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
            const plan = planEvent(request, newEventId(), T0);
            await store.createEvent(plan);
            const model = new Inventory(plan);
            const seatIds = model.allSeats();
            const holds: [string, string][] = []; // [store id, model id], committed ones only
            const orders: [string, string][] = [];
            const answered = new Map<string, { fingerprint: string; answer: string }>();
            const keyedCommands: Command[] = [];
            let modelIds = 0;

            for (const [b, batch] of batches.entries()) {
              const now = new Date(T0.getTime() + b * 1000);
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
                      first.fingerprint === idempotency.fingerprint ? first.answer : "idempotency_key_reused",
                    replayed: first.fingerprint === idempotency.fingerprint,
                  });
                  created.push(null);
                  continue;
                }
                const fingerprint = JSON.stringify(op);
                const key = op.key === null ? null : `k${op.key}`;
                const idempotency = key === null ? null : { key, fingerprint };
                let command: Command;
                let run: () => { ok: boolean; code?: string; made?: [string, string][]; modelId?: string };
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
              const outcomes = await store.execute(plan.id, commands, null, now);
              assert.deepEqual(
                outcomes.map((o) => ({ answer: o.ok ? "ok" : o.refusal.code, replayed: o.replayed })),
                expected,
                `batch ${b}: ${JSON.stringify(batch)}`,
              );
              outcomes.forEach((outcome, i) => {
                const made = created[i];
                if (outcome.ok && made) made.list.push([(outcome.value as Order | Hold).id, made.modelId]);
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
