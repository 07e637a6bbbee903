/**
 * One event's inventory in memory, without I/O: the reference the property tests hold the stores to.
 * It decides with the same decider as every store (decide.ts) and applies each change to its maps,
 * where a store writes it with guarded statements.
 *
 * Invariants (checked by test/unit/domain/inventory.property.test.ts):
 * - sold + held <= capacity, and both are never negative;
 * - a seat is in at most one active hold or confirmed order;
 * - a customer's active holds plus confirmed orders never pass maxPerCustomer;
 * - each ticket type's sold + held never passes its quota;
 * - every order's and hold's total is the sum of its lines, each priced by the event, never the buyer;
 * - no purchase or new hold is taken outside an open sale (status and window, by the clock given);
 * - cancelling an order, releasing or expiring a hold gives its tickets back exactly once.
 *
 * The model's clock is the `now` of each call: in a store it is the database's, read in the transaction.
 */
import type { Change, Decision } from "./decide.js";
import { decide, isOverdue } from "./decide.js";
import type { DomainRefusal } from "./errors.js";
import type { EventPlan, EventUpdate } from "./event.js";
import { planEventUpdate, seatsOf } from "./event.js";
import type { EventAction } from "./sale-window.js";
import { nextStatus } from "./sale-window.js";
import type { Command, Hold, Order, Outcome, Selection } from "./sale.js";
import { SaleTally } from "./sale-tally.js";

export class Inventory {
  /** The event as created, with its settings as edited since. */
  plan: EventPlan;
  readonly #orders = new Map<string, Order>();
  readonly #holds = new Map<string, Hold>();
  readonly #tally: SaleTally;
  #clockMs = 0;

  constructor(plan: EventPlan) {
    this.plan = plan;
    this.#tally = new SaleTally(plan, () => ({ sold: 0, held: 0, tiers: new Map() }), [], [], {
      hold: (holdId) => this.#holds.get(holdId),
      order: (orderId) => this.#orders.get(orderId),
      // The model takes no idempotency keys: the stores' contract tests cover those.
      firstAnswer: () => undefined,
      clockMs: () => this.#clockMs,
    });
  }

  /** Sold and held tickets of one ticket type or price zone. */
  tierCounters(tierId: string): { sold: number; held: number } {
    return this.#tally.tierCounters(tierId);
  }

  /** An admin action (publish, pause, resume, close); a refusal when it does not apply. */
  act(action: EventAction): DomainRefusal | null {
    const status = nextStatus(this.plan.status, action);
    if (typeof status !== "string") return status;
    this.#setPlan({ ...this.plan, status });
    return null;
  }

  /** An admin's edit (PATCH); a refusal when it breaks a rule or the capacity goes below sold + held. */
  update(update: EventUpdate): DomainRefusal | null {
    const next = planEventUpdate(this.plan, this.plan, update, this.sold + this.held);
    if ("code" in next) return next;
    this.#setPlan({ ...this.plan, ...next });
    return null;
  }

  #setPlan(plan: EventPlan): void {
    this.plan = plan;
    this.#tally.rules = plan;
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
  confirmHold(
    holdId: string,
    orderId: string,
    now: Date,
    paymentReference: string | null = null,
  ): Outcome<Order> {
    const command: Command = { type: "confirm-hold", holdId, paymentReference, idempotency: null };
    return this.#run(command, now, orderId) as Outcome<Order>;
  }

  /** Moves an active hold's expiry to now + ttlSeconds, never past its lifetime's end. */
  extendHold(holdId: string, ttlSeconds: number, now: Date): Outcome<Hold> {
    return this.#run({ type: "extend-hold", holdId, ttlSeconds }, now, "") as Outcome<Hold>;
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
    this.#clockMs = now.getTime();
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
      case "extend-hold":
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
