/**
 * The rules of one event's inventory, in memory and without I/O. Stores enforce the same rules with
 * guarded writes and constraints; this model is the reference the property tests hold them to.
 *
 * Invariants (checked by test/unit/domain/inventory.property.test.ts):
 * - sold + held <= capacity, and both are never negative;
 * - a seat is in at most one active hold or confirmed order;
 * - a customer's active holds plus confirmed orders never pass maxPerCustomer;
 * - cancelling an order, releasing or expiring a hold gives its tickets back exactly once.
 */
import type { DomainRefusal } from "./errors.js";
import type { EventPlan } from "./event.js";
import { parseSeatId, seatsOf } from "./event.js";
import type { Hold, Order, Selection } from "./sale.js";
import { checkSelection } from "./sale.js";

export type InventoryResult<T> = { ok: true; value: T } | { ok: false; refusal: DomainRefusal };

export class Inventory {
  readonly plan: EventPlan;
  #sold = 0;
  #held = 0;
  /** seat id -> the hold or order that has it; absent when available. */
  readonly #seatOwner = new Map<string, string>();
  readonly #customerTickets = new Map<string, number>();
  readonly #orders = new Map<string, Order>();
  readonly #holds = new Map<string, Hold>();

  constructor(plan: EventPlan) {
    this.plan = plan;
  }

  get sold(): number {
    return this.#sold;
  }
  get held(): number {
    return this.#held;
  }
  get available(): number {
    return this.plan.capacity - this.#sold - this.#held;
  }
  orders(): Order[] {
    return [...this.#orders.values()];
  }
  holds(): Hold[] {
    return [...this.#holds.values()];
  }
  seatOwner(seatId: string): string | undefined {
    return this.#seatOwner.get(seatId);
  }
  customerTickets(customerId: string): number {
    return this.#customerTickets.get(customerId) ?? 0;
  }

  /** Why this selection cannot be taken now, or null when it can. */
  #refuse(customerId: string, selection: Selection): DomainRefusal | null {
    const shape = checkSelection(selection, this.plan);
    if (shape) return shape;
    if (selection.seats !== null) {
      const unknown = selection.seats.filter((id) => parseSeatId(id, this.plan.sections ?? []) === null);
      if (unknown.length > 0) {
        return { code: "invalid_request", detail: `no such seat: ${unknown.join(", ")}` };
      }
      const taken = selection.seats.filter((id) => this.#seatOwner.has(id));
      if (taken.length > 0) {
        return { code: "seats_unavailable", detail: `seats held or sold: ${taken.join(", ")}`, seats: taken };
      }
    } else if (selection.quantity > this.available) {
      return { code: "sold_out", detail: `fewer than ${selection.quantity} tickets left` };
    }
    if (this.customerTickets(customerId) + selection.quantity > this.plan.maxPerCustomer) {
      return {
        code: "customer_limit_reached",
        detail: `at most ${this.plan.maxPerCustomer} tickets per customer for this event`,
      };
    }
    return null;
  }

  #take(ownerId: string, customerId: string, selection: Selection): void {
    for (const seat of selection.seats ?? []) this.#seatOwner.set(seat, ownerId);
    this.#customerTickets.set(customerId, this.customerTickets(customerId) + selection.quantity);
  }

  #giveBack(ownerId: string, customerId: string, quantity: number, seats: string[] | null): void {
    for (const seat of seats ?? []) {
      if (this.#seatOwner.get(seat) === ownerId) this.#seatOwner.delete(seat);
    }
    this.#customerTickets.set(customerId, this.customerTickets(customerId) - quantity);
  }

  purchase(orderId: string, customerId: string, selection: Selection, now: Date): InventoryResult<Order> {
    const refusal = this.#refuse(customerId, selection);
    if (refusal) return { ok: false, refusal };
    this.#take(orderId, customerId, selection);
    this.#sold += selection.quantity;
    const order: Order = {
      id: orderId,
      eventId: this.plan.id,
      customerId,
      quantity: selection.quantity,
      seats: selection.seats,
      status: "confirmed",
      createdAt: now.toISOString(),
      cancelledAt: null,
    };
    this.#orders.set(orderId, order);
    return { ok: true, value: order };
  }

  hold(
    holdId: string,
    customerId: string,
    selection: Selection,
    ttlSeconds: number,
    now: Date,
  ): InventoryResult<Hold> {
    const refusal = this.#refuse(customerId, selection);
    if (refusal) return { ok: false, refusal };
    this.#take(holdId, customerId, selection);
    this.#held += selection.quantity;
    const hold: Hold = {
      id: holdId,
      eventId: this.plan.id,
      customerId,
      quantity: selection.quantity,
      seats: selection.seats,
      status: "active",
      expiresAt: new Date(now.getTime() + ttlSeconds * 1000).toISOString(),
    };
    this.#holds.set(holdId, hold);
    return { ok: true, value: hold };
  }

  /** Turns an active, unexpired hold into a confirmed order with the same tickets. */
  confirmHold(holdId: string, orderId: string, now: Date): InventoryResult<Order> {
    const hold = this.#holds.get(holdId);
    if (!hold) return { ok: false, refusal: { code: "hold_not_found", detail: "no such hold" } };
    if (hold.status === "active" && Date.parse(hold.expiresAt) <= now.getTime()) this.#expire(hold);
    if (hold.status === "expired") {
      return { ok: false, refusal: { code: "hold_expired", detail: "the hold expired" } };
    }
    if (hold.status !== "active") {
      return { ok: false, refusal: { code: "hold_not_active", detail: `the hold is ${hold.status}` } };
    }
    hold.status = "confirmed";
    this.#held -= hold.quantity;
    this.#sold += hold.quantity;
    for (const seat of hold.seats ?? []) this.#seatOwner.set(seat, orderId);
    const order: Order = {
      id: orderId,
      eventId: this.plan.id,
      customerId: hold.customerId,
      quantity: hold.quantity,
      seats: hold.seats,
      status: "confirmed",
      createdAt: now.toISOString(),
      cancelledAt: null,
    };
    this.#orders.set(orderId, order);
    return { ok: true, value: order };
  }

  /** Releases an active hold; releasing one that is no longer active changes nothing. */
  releaseHold(holdId: string): InventoryResult<Hold> {
    const hold = this.#holds.get(holdId);
    if (!hold) return { ok: false, refusal: { code: "hold_not_found", detail: "no such hold" } };
    if (hold.status === "active") {
      hold.status = "released";
      this.#held -= hold.quantity;
      this.#giveBack(hold.id, hold.customerId, hold.quantity, hold.seats);
    }
    return { ok: true, value: hold };
  }

  /** Cancels a confirmed order; a repeat answers the same order and releases nothing more. */
  cancelOrder(orderId: string, now: Date): InventoryResult<Order> {
    const order = this.#orders.get(orderId);
    if (!order) return { ok: false, refusal: { code: "order_not_found", detail: "no such order" } };
    if (order.status === "confirmed") {
      order.status = "cancelled";
      order.cancelledAt = now.toISOString();
      this.#sold -= order.quantity;
      this.#giveBack(order.id, order.customerId, order.quantity, order.seats);
    }
    return { ok: true, value: order };
  }

  /** Expires every active hold whose time has come; returns how many it released. */
  expireHolds(now: Date): number {
    let released = 0;
    for (const hold of this.#holds.values()) {
      if (hold.status === "active" && Date.parse(hold.expiresAt) <= now.getTime()) {
        this.#expire(hold);
        released++;
      }
    }
    return released;
  }

  #expire(hold: Hold): void {
    hold.status = "expired";
    this.#held -= hold.quantity;
    this.#giveBack(hold.id, hold.customerId, hold.quantity, hold.seats);
  }

  /** Every seat id of the event (empty for general admission). */
  allSeats(): string[] {
    return [...seatsOf(this.plan)].map((s) => s.id);
  }
}
