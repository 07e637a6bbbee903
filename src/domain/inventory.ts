/**
 * One event's inventory in memory, without I/O: the reference the property tests hold the stores to.
 * It decides with the same decider as every store (decide.ts) and applies each change to its maps,
 * where a store writes it with guarded statements.
 *
 * Invariants (checked by test/unit/domain/inventory.property.test.ts):
 * - sold + held <= capacity, and both are never negative;
 * - a seat is in at most one active hold or confirmed order;
 * - a customer's active holds plus confirmed orders never pass maxPerCustomer;
 * - cancelling an order, releasing or expiring a hold gives its tickets back exactly once.
 */
import type { Change, Decision } from "./decide.js";
import { decide, isOverdue } from "./decide.js";
import type { EventPlan } from "./event.js";
import { seatsOf } from "./event.js";
import type { Command, Hold, Order, Outcome, Selection } from "./sale.js";
import { SaleTally } from "./sale-tally.js";

export class Inventory {
  readonly plan: EventPlan;
  readonly #orders = new Map<string, Order>();
  readonly #holds = new Map<string, Hold>();
  readonly #tally: SaleTally;

  constructor(plan: EventPlan) {
    this.plan = plan;
    this.#tally = new SaleTally(plan, () => ({ sold: 0, held: 0 }), [], [], {
      hold: (holdId) => this.#holds.get(holdId),
      order: (orderId) => this.#orders.get(orderId),
      // The model takes no idempotency keys: the stores' contract tests cover those.
      firstAnswer: () => undefined,
    });
  }

  get sold(): number {
    return this.#tally.counters().sold;
  }
  get held(): number {
    return this.#tally.counters().held;
  }
  get available(): number {
    return this.plan.capacity - this.sold - this.held;
  }
  orders(): Order[] {
    return [...this.#orders.values()];
  }
  holds(): Hold[] {
    return [...this.#holds.values()];
  }
  seatOwner(seatId: string): string | undefined {
    return this.#tally.seatOwner(seatId);
  }
  customerTickets(customerId: string): number {
    return this.#tally.ticketsOf(customerId);
  }

  purchase(orderId: string, customerId: string, selection: Selection, now: Date): Outcome<Order> {
    const command: Command = { type: "purchase", customerId, selection, idempotency: null };
    return this.#run(command, now, orderId) as Outcome<Order>;
  }

  hold(
    holdId: string,
    customerId: string,
    selection: Selection,
    ttlSeconds: number,
    now: Date,
  ): Outcome<Hold> {
    const command: Command = { type: "hold", customerId, selection, ttlSeconds, idempotency: null };
    return this.#run(command, now, holdId) as Outcome<Hold>;
  }

  /** Turns an active, unexpired hold into a confirmed order with the same tickets. */
  confirmHold(holdId: string, orderId: string, now: Date): Outcome<Order> {
    return this.#run({ type: "confirm-hold", holdId, idempotency: null }, now, orderId) as Outcome<Order>;
  }

  /** Releases an active hold; releasing one that is no longer active changes nothing. */
  releaseHold(holdId: string): Outcome<Hold> {
    // Releasing does not look at the clock.
    return this.#run({ type: "release-hold", holdId }, new Date(0), "") as Outcome<Hold>;
  }

  /** Cancels a confirmed order; a repeat answers the same order and releases nothing more. */
  cancelOrder(orderId: string, now: Date): Outcome<Order> {
    return this.#run({ type: "cancel-order", orderId }, now, "") as Outcome<Order>;
  }

  /** Expires every active hold whose time has come; returns how many it released. */
  expireHolds(now: Date): number {
    let released = 0;
    for (const hold of this.#holds.values()) {
      if (hold.status === "active" && isOverdue(hold, now)) {
        this.#apply({ type: "end-hold", hold: { ...hold, status: "expired" } });
        released++;
      }
    }
    return released;
  }

  /** Every seat id of the event (empty for general admission). */
  allSeats(): string[] {
    return [...seatsOf(this.plan)].map((s) => s.id);
  }

  /** Decides `command` with `newId` as the id of whatever it creates, and applies the change. */
  #run(command: Command, now: Date, newId: string): Outcome {
    const decision: Decision = decide(this.#tally, command, now, { order: () => newId, hold: () => newId });
    if (decision.change) this.#apply(decision.change);
    return decision.outcome;
  }

  #apply(change: Change): void {
    this.#tally.apply(change);
    switch (change.type) {
      case "sell":
        this.#orders.set(change.order.id, change.order);
        return;
      case "hold":
      case "end-hold":
        this.#holds.set(change.hold.id, change.hold);
        return;
      case "confirm":
        this.#holds.set(change.hold.id, change.hold);
        this.#orders.set(change.order.id, change.order);
        return;
      case "cancel":
        this.#orders.set(change.order.id, change.order);
        return;
    }
  }
}
