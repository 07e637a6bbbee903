/**
 * Property tests of the inventory rules: for any sequence of operations, sold + held <= capacity, a seat
 * is in at most one active hold or confirmed order, customer limits hold, and a cancel or release gives
 * tickets back exactly once.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Inventory } from "../../../src/domain/inventory.js";
import { planEvent, seatId } from "../../../src/domain/event.js";
import type { Selection } from "../../../src/domain/sale.js";

const START = new Date("2026-01-01T00:00:00Z");

type Op =
  | { op: "purchase"; customer: number; quantity: number; seats: number[] }
  | { op: "hold"; customer: number; quantity: number; seats: number[]; ttl: number }
  | { op: "confirm"; target: number }
  | { op: "release"; target: number }
  | { op: "cancel"; target: number }
  | { op: "tick"; seconds: number };

const opArbitrary: fc.Arbitrary<Op> = fc.oneof(
  fc.record({
    op: fc.constant("purchase" as const),
    customer: fc.nat(4),
    quantity: fc.integer({ min: 0, max: 6 }),
    seats: fc.array(fc.nat(11), { maxLength: 4 }),
  }),
  fc.record({
    op: fc.constant("hold" as const),
    customer: fc.nat(4),
    quantity: fc.integer({ min: 0, max: 6 }),
    seats: fc.array(fc.nat(11), { maxLength: 4 }),
    ttl: fc.integer({ min: 30, max: 120 }),
  }),
  fc.record({ op: fc.constant("confirm" as const), target: fc.nat(40) }),
  fc.record({ op: fc.constant("release" as const), target: fc.nat(40) }),
  fc.record({ op: fc.constant("cancel" as const), target: fc.nat(40) }),
  fc.record({ op: fc.constant("tick" as const), seconds: fc.integer({ min: 1, max: 90 }) }),
);

function run(kind: "general" | "seated", ops: Op[]): void {
  const plan = planEvent(
    kind === "general"
      ? { name: "prop", capacity: 10, maxPerOrder: 4, maxPerCustomer: 6 }
      : {
          name: "prop",
          seating: { sections: [{ name: "A", rows: 3, seatsPerRow: 4 }] },
          maxPerOrder: 4,
          maxPerCustomer: 6,
        },
    "evt_00000000000000000000000000",
    START,
  );
  const inventory = new Inventory(plan);
  const seatIds = inventory.allSeats();
  let now = START.getTime();
  let counter = 0;
  const holdIds: string[] = [];
  const orderIds: string[] = [];

  const selectionOf = (quantity: number, seats: number[]): Selection =>
    kind === "general"
      ? { quantity, seats: null }
      : { quantity: seats.length, seats: seats.map((i) => seatIds[i] ?? seatId("Z", 1, 1)) };

  for (const op of ops) {
    const at = new Date(now);
    const soldBefore = inventory.sold;
    const heldBefore = inventory.held;
    switch (op.op) {
      case "purchase": {
        const result = inventory.purchase(
          `o${counter++}`,
          `c${op.customer}`,
          selectionOf(op.quantity, op.seats),
          at,
        );
        if (result.ok) orderIds.push(result.value.id);
        else assert.equal(inventory.sold, soldBefore, "a refused purchase sells nothing");
        break;
      }
      case "hold": {
        const result = inventory.hold(
          `h${counter++}`,
          `c${op.customer}`,
          selectionOf(op.quantity, op.seats),
          op.ttl,
          at,
        );
        if (result.ok) holdIds.push(result.value.id);
        else assert.equal(inventory.held, heldBefore, "a refused hold holds nothing");
        break;
      }
      case "confirm": {
        const holdId = holdIds[op.target % Math.max(1, holdIds.length)] ?? "none";
        const result = inventory.confirmHold(holdId, `o${counter++}`, at);
        if (result.ok) {
          orderIds.push(result.value.id);
          assert.equal(inventory.sold + inventory.held, soldBefore + heldBefore, "confirm moves, never adds");
        }
        break;
      }
      case "release": {
        const holdId = holdIds[op.target % Math.max(1, holdIds.length)] ?? "none";
        const hold = inventory.holds().find((h) => h.id === holdId);
        const wasActive = hold?.status === "active";
        inventory.releaseHold(holdId);
        if (hold)
          assert.equal(inventory.held, heldBefore - (wasActive ? hold.quantity : 0), "release exactly once");
        break;
      }
      case "cancel": {
        const orderId = orderIds[op.target % Math.max(1, orderIds.length)] ?? "none";
        const order = inventory.orders().find((o) => o.id === orderId);
        const wasConfirmed = order?.status === "confirmed";
        inventory.cancelOrder(orderId, at);
        if (order)
          assert.equal(
            inventory.sold,
            soldBefore - (wasConfirmed ? order.quantity : 0),
            "cancel exactly once",
          );
        break;
      }
      case "tick":
        now += op.seconds * 1000;
        inventory.expireHolds(new Date(now));
        break;
    }
    checkInvariants(inventory);
  }
}

function checkInvariants(inventory: Inventory): void {
  const { capacity, maxPerCustomer } = inventory.plan;
  assert.ok(inventory.sold >= 0 && inventory.held >= 0, "counters never negative");
  assert.ok(inventory.sold + inventory.held <= capacity, "sold + held <= capacity");
  const confirmed = inventory.orders().filter((o) => o.status === "confirmed");
  const active = inventory.holds().filter((h) => h.status === "active");
  assert.equal(
    inventory.sold,
    confirmed.reduce((n, o) => n + o.quantity, 0),
    "sold = sum of confirmed orders",
  );
  assert.equal(
    inventory.held,
    active.reduce((n, h) => n + h.quantity, 0),
    "held = sum of active holds",
  );
  const seen = new Set<string>();
  for (const owner of [...confirmed, ...active]) {
    for (const seat of owner.seats ?? []) {
      assert.ok(!seen.has(seat), `seat ${seat} in two active sales`);
      seen.add(seat);
    }
  }
  const perCustomer = new Map<string, number>();
  for (const owner of [...confirmed, ...active]) {
    perCustomer.set(owner.customerId, (perCustomer.get(owner.customerId) ?? 0) + owner.quantity);
  }
  for (const [customer, tickets] of perCustomer) {
    assert.ok(tickets <= maxPerCustomer, `customer ${customer} holds ${tickets} > ${maxPerCustomer}`);
    assert.equal(inventory.customerTickets(customer), tickets);
  }
}

describe("inventory rules (property)", () => {
  it("keep every invariant for any sequence of general admission operations", () => {
    fc.assert(
      fc.property(fc.array(opArbitrary, { maxLength: 60 }), (ops) => run("general", ops)),
      { numRuns: 400 },
    );
  });

  it("keep every invariant for any sequence of reserved seating operations", () => {
    fc.assert(
      fc.property(fc.array(opArbitrary, { maxLength: 60 }), (ops) => run("seated", ops)),
      { numRuns: 400 },
    );
  });
});
