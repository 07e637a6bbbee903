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
    tiers?: Record<string, { sold: number; held: number }>;
    clockMs?: number;
  } = {},
): SaleView {
  return {
    rules,
    counters: () => ({ sold: parts.sold ?? 0, held: parts.held ?? 0 }),
    tierCounters: (tierId) => parts.tiers?.[tierId] ?? { sold: 0, held: 0 },
    clockMs: () => parts.clockMs ?? NOW.getTime(),
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
  createdAt: new Date(NOW.getTime() - 60_000).toISOString(),
  lines: [
    { item: "price_zone", id: "default", name: "Standard", quantity: 2, unitPrice: 1500, subtotal: 3000 },
  ],
  total: 3000,
  currency: "EUR",
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
      { type: "confirm-hold", holdId: "h1", paymentReference: "pay_123", idempotency: null },
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
      lines: activeHold.lines,
      total: 3000,
      currency: "EUR",
      paymentReference: "pay_123",
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

  describe("the sale window, by the view's clock (the database's)", () => {
    const START = "2026-03-01T12:00:00.000Z";
    const END = "2026-03-01T14:00:00.000Z";
    const windowed = planEvent(
      { name: "w", capacity: 10, salesStartAt: START, salesEndAt: END },
      "evt_W",
      NOW,
    );
    const at = (iso: string) => Date.parse(iso);
    const code = (rules: SaleView["rules"], clockMs: number) => {
      const { outcome, change } = decide(view(rules, { clockMs }), buy("c", 1), NOW, IDS);
      if (!outcome.ok) assert.equal(change, null, "a refusal writes nothing");
      return outcome.ok ? "ok" : outcome.refusal;
    };

    it("refuses before the start with when it opens, sells from the start, refuses from the end", () => {
      assert.deepEqual(code(windowed, at(START) - 1), {
        code: "sale_not_open",
        detail: `the sale opens at ${START}`,
        opensAt: START,
      });
      assert.equal(code(windowed, at(START)), "ok");
      assert.equal(code(windowed, at(END) - 1), "ok");
      assert.equal((code(windowed, at(END)) as { code: string }).code, "sale_closed");
    });

    it("judges by the clock in the view, never by the `now` the instance passes", () => {
      // The instance's now is inside the window; the database's clock is not.
      const instanceNow = new Date(at(START) + 1000);
      const { outcome } = decide(
        view(windowed, { clockMs: at(START) - 1000 }),
        buy("c", 1),
        instanceNow,
        IDS,
      );
      assert.equal(!outcome.ok && outcome.refusal.code, "sale_not_open");
    });

    it("refuses a draft, a paused and a closed event whatever the window", () => {
      const inside = at(START) + 1;
      assert.equal(
        (code({ ...windowed, status: "draft" }, inside) as { code: string }).code,
        "sale_not_open",
      );
      assert.equal((code({ ...windowed, status: "paused" }, inside) as { code: string }).code, "sale_paused");
      assert.equal((code({ ...windowed, status: "closed" }, inside) as { code: string }).code, "sale_closed");
      assert.equal(code(general, 0), "ok", "no window: on sale at once, as before");
    });

    it("confirms a hold while paused only when the event allows it; never once closed", () => {
      const confirm: Command = { type: "confirm-hold", holdId: "h1", idempotency: null };
      const answer = (rules: SaleView["rules"]) => {
        const { outcome } = decide(view(rules, { holds: [activeHold] }), confirm, NOW, IDS);
        return outcome.ok ? "ok" : outcome.refusal.code;
      };
      assert.equal(answer({ ...seated, status: "paused" }), "ok");
      assert.equal(answer({ ...seated, status: "paused", confirmHoldsWhilePaused: false }), "sale_paused");
      assert.equal(answer({ ...seated, status: "closed" }), "sale_closed");
      // A window that ended does not stop a checkout that started in time.
      assert.equal(answer({ ...seated, salesEndAt: "2000-01-01T00:00:00.000Z" }), "ok");
    });
  });

  describe("prices", () => {
    const typed = planEvent(
      {
        name: "t",
        capacity: 10,
        maxPerOrder: 8,
        currency: "SEK",
        ticketTypes: [
          { id: "adult", name: "Adult", price: 4500, quota: 6, maxPerOrder: 4 },
          { id: "child", name: "Child", price: 2000 },
        ],
      },
      "evt_T",
      NOW,
    );
    const order = (items: { ticketTypeId: string; quantity: number }[]): Command => ({
      type: "purchase",
      customerId: "c",
      selection: { quantity: items.reduce((sum, i) => sum + i.quantity, 0), seats: null, items },
      idempotency: null,
    });

    it("prices each line from the event and totals the lines", () => {
      const { outcome } = decide(
        view(typed),
        order([
          { ticketTypeId: "adult", quantity: 2 },
          { ticketTypeId: "child", quantity: 3 },
        ]),
        NOW,
        IDS,
      );
      assert.ok(outcome.ok);
      const value = outcome.value as Order;
      assert.deepEqual(value.lines, [
        { item: "ticket_type", id: "adult", name: "Adult", quantity: 2, unitPrice: 4500, subtotal: 9000 },
        { item: "ticket_type", id: "child", name: "Child", quantity: 3, unitPrice: 2000, subtotal: 6000 },
      ]);
      assert.equal(value.total, 15000);
      assert.equal(value.currency, "SEK");
    });

    it("holds a ticket type to its quota and its max per order, and the event to its capacity", () => {
      const code = (command: Command, parts: Parameters<typeof view>[1] = {}) => {
        const { outcome } = decide(view(typed, parts), command, NOW, IDS);
        return outcome.ok ? "ok" : outcome.refusal.code;
      };
      assert.equal(
        code(order([{ ticketTypeId: "adult", quantity: 2 }]), { tiers: { adult: { sold: 3, held: 1 } } }),
        "ok",
      );
      assert.equal(
        code(order([{ ticketTypeId: "adult", quantity: 3 }]), { tiers: { adult: { sold: 3, held: 1 } } }),
        "sold_out",
      );
      assert.equal(
        code(order([{ ticketTypeId: "adult", quantity: 5 }])),
        "invalid_request",
        "type's max per order",
      );
      assert.equal(
        code(order([{ ticketTypeId: "child", quantity: 3 }]), { sold: 8 }),
        "sold_out",
        "capacity",
      );
      assert.equal(code(order([{ ticketTypeId: "vip", quantity: 1 }])), "invalid_request", "no such type");
      assert.equal(code(buy("c", 1)), "invalid_request", "several types: items are needed");
      assert.equal(code(buy("c", 1), {}), "invalid_request");
    });

    it("prices seats by zone, the seats no zone covers at the event's price", () => {
      const zoned = planEvent(
        {
          name: "z",
          seating: { sections: [{ name: "A", rows: 4, seatsPerRow: 2 }] },
          price: 1000,
          priceZones: [{ id: "front", name: "Front", price: 5000, section: "A", rows: { from: 1, to: 2 } }],
        },
        "evt_Z",
        NOW,
      );
      const { outcome } = decide(
        view(zoned),
        {
          type: "purchase",
          customerId: "c",
          selection: { quantity: 3, seats: ["A-1-1", "A-2-2", "A-4-1"] },
          idempotency: null,
        },
        NOW,
        IDS,
      );
      assert.ok(outcome.ok);
      const value = outcome.value as Order;
      assert.deepEqual(
        value.lines.map((l) => [l.id, l.quantity, l.unitPrice, l.subtotal]),
        [
          ["front", 2, 5000, 10000],
          ["default", 1, 1000, 1000],
        ],
      );
      assert.equal(value.total, 11000);
    });
  });

  describe("extending a hold", () => {
    const extend = (ttlSeconds: number): Command => ({ type: "extend-hold", holdId: "h1", ttlSeconds });
    const general1h = { ...general, maxHoldLifetimeSeconds: 3600 };

    it("moves the expiry to now + ttl, capped at creation + the event's max lifetime", () => {
      const hold = { ...activeHold, createdAt: new Date(NOW.getTime() - 3000_000).toISOString() };
      const { outcome, change } = decide(view(general1h, { holds: [hold] }), extend(1800), NOW, IDS);
      assert.ok(outcome.ok);
      // created 50 min ago with a 60 min lifetime: 10 more minutes, not 30.
      assert.equal((outcome.value as Hold).expiresAt, new Date(NOW.getTime() + 600_000).toISOString());
      assert.equal(change?.type, "extend-hold");
    });

    it("refuses at its longest lifetime, and refuses an expired hold with hold_expired", () => {
      const atLimit = {
        ...activeHold,
        createdAt: new Date(NOW.getTime() - 3540_000).toISOString(),
        expiresAt: new Date(NOW.getTime() + 60_000).toISOString(),
      };
      const limited = decide(view(general1h, { holds: [atLimit] }), extend(600), NOW, IDS);
      assert.equal(!limited.outcome.ok && limited.outcome.refusal.code, "hold_extension_limit");
      assert.equal(limited.change, null);
      const overdue = { ...activeHold, expiresAt: NOW.toISOString() };
      const expired = decide(view(general1h, { holds: [overdue] }), extend(600), NOW, IDS);
      assert.equal(!expired.outcome.ok && expired.outcome.refusal.code, "hold_expired");
      assert.equal(expired.change?.type, "end-hold");
    });
  });
});
