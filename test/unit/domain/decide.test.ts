/**
 * The decider on hand-made views: what it answers, what it asks to write, what it keeps for a key. The
 * property tests (inventory.property.test.ts, and the store contract against the model) cover it on
 * random sequences; these pin the cases a store relies on.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { SaleView } from "../../../src/domain/decide.js";
import { decide, replayOf } from "../../../src/domain/decide.js";
import { planEvent } from "../../../src/domain/event.js";
import type { Command, Hold, IdempotencyRecord, Order } from "../../../src/domain/sale.js";

const NOW = new Date("2026-03-01T10:00:00Z");
const IDS = { order: () => "o-new", hold: () => "h-new" };
const general = planEvent({ name: "g", capacity: 10, maxPerOrder: 4, maxPerCustomer: 5 }, "evt_G", NOW);
const seated = planEvent(
  { name: "s", seating: { sections: [{ name: "A", rows: 1, seatsPerRow: 4 }] }, maxPerCustomer: 3 },
  "evt_S",
  NOW,
);

function view(
  rules: SaleView["rules"],
  parts: {
    sold?: number;
    held?: number;
    tickets?: Record<string, number>;
    owners?: Record<string, string>;
    holds?: Hold[];
    orders?: Order[];
    answers?: IdempotencyRecord[];
  } = {},
): SaleView {
  return {
    rules,
    counters: () => ({ sold: parts.sold ?? 0, held: parts.held ?? 0 }),
    ticketsOf: (customerId) => parts.tickets?.[customerId] ?? 0,
    seatOwner: (seatId) => parts.owners?.[seatId],
    hold: (holdId) => parts.holds?.find((h) => h.id === holdId),
    order: (orderId) => parts.orders?.find((o) => o.id === orderId),
    firstAnswer: (key) => parts.answers?.find((a) => a.key === key),
  };
}

const buy = (customerId: string, quantity: number, key: string | null = null): Command => ({
  type: "purchase",
  customerId,
  selection: { quantity, seats: null },
  idempotency: key === null ? null : { key, fingerprint: `fp-${customerId}-${quantity}` },
});

const activeHold: Hold = {
  id: "h1",
  eventId: "evt_S",
  customerId: "c",
  quantity: 2,
  seats: ["A-1-1", "A-1-2"],
  status: "active",
  expiresAt: new Date(NOW.getTime() + 60_000).toISOString(),
};

describe("decide", () => {
  it("sells what is left, with the caller's id, and keeps the answer for the key", () => {
    const decision = decide(view(general, { sold: 6 }), buy("c", 4, "k"), NOW, IDS);
    assert.equal(decision.outcome.ok, true);
    assert.equal(decision.change?.type, "sell");
    assert.equal(decision.change?.type === "sell" && decision.change.order.id, "o-new");
    assert.deepEqual(decision.keep, {
      key: "k",
      fingerprint: "fp-c-4",
      answer: { ok: true, value: decision.change?.type === "sell" ? decision.change.order : null },
    });
  });

  it("refuses with nothing to write, and keeps the refusal for the key", () => {
    const decision = decide(view(general, { sold: 6, held: 1 }), buy("c", 4, "k"), NOW, IDS);
    assert.equal(decision.change, null);
    assert.equal(!decision.outcome.ok && decision.outcome.refusal.code, "sold_out");
    assert.equal(decision.keep?.answer.ok, false);
  });

  it("checks the shape, then the seats, then the customer's limit", () => {
    const taken = view(seated, { owners: { "A-1-2": "o9" }, tickets: { c: 3 } });
    const code = (command: Command) => {
      const { outcome } = decide(taken, command, NOW, IDS);
      return outcome.ok ? "ok" : outcome.refusal.code;
    };
    const seats = (...ids: string[]): Command => ({
      type: "purchase",
      customerId: "c",
      selection: { quantity: ids.length, seats: ids },
      idempotency: null,
    });
    assert.equal(code(buy("c", 1)), "invalid_request", "quantity on a seated event");
    assert.equal(code(seats("A-1-9")), "invalid_request", "no such seat");
    assert.equal(code(seats("A-1-1", "A-1-2")), "seats_unavailable");
    assert.equal(code(seats("A-1-3")), "customer_limit_reached");
  });

  it("replays a first answer and reads nothing else; the same key with another request is refused", () => {
    const first: IdempotencyRecord = {
      key: "k",
      fingerprint: "fp-c-1",
      answer: { ok: false, refusal: { code: "sold_out", detail: "fewer than 1 tickets left" } },
    };
    const strict: SaleView = {
      ...view(general, { answers: [first] }),
      counters: () => assert.fail("a replay reads no counters"),
    };
    assert.deepEqual(replayOf(strict, buy("c", 1, "k")), {
      outcome: { ...first.answer, replayed: true },
      change: null,
      keep: null,
    });
    const reused = decide(strict, buy("c", 2, "k"), NOW, IDS);
    assert.equal(!reused.outcome.ok && reused.outcome.refusal.code, "idempotency_key_reused");
    assert.equal(reused.keep, null, "a reused key keeps nothing");
    assert.equal(replayOf(strict, buy("c", 1)), null, "no key, no replay");
  });

  it("confirming an overdue hold expires it and refuses", () => {
    const overdue = { ...activeHold, expiresAt: NOW.toISOString() };
    const decision = decide(
      view(seated, { holds: [overdue] }),
      { type: "confirm-hold", holdId: "h1", idempotency: null },
      NOW,
      IDS,
    );
    assert.equal(!decision.outcome.ok && decision.outcome.refusal.code, "hold_expired");
    assert.deepEqual(decision.change, { type: "end-hold", hold: { ...overdue, status: "expired" } });
  });

  it("confirms an active hold into an order with its seats", () => {
    const decision = decide(
      view(seated, { holds: [activeHold] }),
      { type: "confirm-hold", holdId: "h1", idempotency: null },
      NOW,
      IDS,
    );
    assert.equal(decision.change?.type, "confirm");
    assert.deepEqual(decision.outcome.ok && decision.outcome.value, {
      id: "o-new",
      eventId: "evt_S",
      customerId: "c",
      quantity: 2,
      seats: ["A-1-1", "A-1-2"],
      status: "confirmed",
      createdAt: NOW.toISOString(),
      cancelledAt: null,
    });
  });

  it("a second release or cancel answers the record as it is and writes nothing", () => {
    const released = { ...activeHold, status: "released" as const };
    const again = decide(
      view(seated, { holds: [released] }),
      { type: "release-hold", holdId: "h1" },
      NOW,
      IDS,
    );
    assert.deepEqual(again, {
      outcome: { ok: true, value: released, replayed: false },
      change: null,
      keep: null,
    });
    const missing = decide(view(seated), { type: "cancel-order", orderId: "o1" }, NOW, IDS);
    assert.equal(!missing.outcome.ok && missing.outcome.refusal.code, "order_not_found");
  });
});
