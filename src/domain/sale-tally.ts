/**
 * A SaleView kept in memory and brought up to date by each change as it is written, so that every
 * command of a batch is decided exactly as if it ran alone, in order. The reference model keeps one
 * for the whole event; a store keeps one per batch, filled with what it read under the event's write
 * lock about the batch's own customers and seats (`ticketsOf` and `seatOwner` only answer for those).
 * The holds, orders and first answers a command names are looked up through the store's `lookups`.
 */
import type { Change, SaleRules, SaleView } from "./decide.js";
import type { Hold, IdempotencyRecord, Order } from "./sale.js";

export interface SaleLookups {
  hold(holdId: string): Hold | undefined;
  order(orderId: string): Order | undefined;
  firstAnswer(key: string): IdempotencyRecord | undefined;
}

export class SaleTally implements SaleView {
  readonly rules: SaleRules;
  #sold: number;
  #held: number;
  /** Tickets per customer; only customers that were read (or that took tickets) are here. */
  readonly #tickets: Map<string, number>;
  /** seat id -> the hold or order that has it; absent when free (or not read). */
  readonly #seatOwners: Map<string, string>;
  readonly #lookups: SaleLookups;

  constructor(
    rules: SaleRules,
    counters: { sold: number; held: number },
    tickets: Iterable<readonly [string, number]>,
    seatOwners: Iterable<readonly [string, string]>,
    lookups: SaleLookups,
  ) {
    this.rules = rules;
    this.#sold = counters.sold;
    this.#held = counters.held;
    this.#tickets = new Map(tickets);
    this.#seatOwners = new Map(seatOwners);
    this.#lookups = lookups;
  }

  counters(): { sold: number; held: number } {
    return { sold: this.#sold, held: this.#held };
  }

  ticketsOf(customerId: string): number {
    return this.#tickets.get(customerId) ?? 0;
  }

  seatOwner(seatId: string): string | undefined {
    return this.#seatOwners.get(seatId);
  }

  hold(holdId: string): Hold | undefined {
    return this.#lookups.hold(holdId);
  }

  order(orderId: string): Order | undefined {
    return this.#lookups.order(orderId);
  }

  firstAnswer(key: string): IdempotencyRecord | undefined {
    return this.#lookups.firstAnswer(key);
  }

  /** Counts a change that was written (or, in the model, that happened). */
  apply(change: Change): void {
    switch (change.type) {
      case "sell":
        this.#sold += change.order.quantity;
        this.#take(change.order);
        return;
      case "hold":
        this.#held += change.hold.quantity;
        this.#take(change.hold);
        return;
      case "confirm":
        this.#held -= change.hold.quantity;
        this.#sold += change.hold.quantity;
        for (const seat of change.hold.seats ?? []) {
          if (this.#seatOwners.get(seat) === change.hold.id) this.#seatOwners.set(seat, change.order.id);
        }
        return;
      case "end-hold":
        this.#held -= change.hold.quantity;
        this.#giveBack(change.hold);
        return;
      case "cancel":
        this.#sold -= change.order.quantity;
        this.#giveBack(change.order);
        return;
    }
  }

  #take(owner: Order | Hold): void {
    this.#tickets.set(owner.customerId, this.ticketsOf(owner.customerId) + owner.quantity);
    for (const seat of owner.seats ?? []) this.#seatOwners.set(seat, owner.id);
  }

  #giveBack(owner: Order | Hold): void {
    const tickets = this.#tickets.get(owner.customerId);
    if (tickets !== undefined) this.#tickets.set(owner.customerId, tickets - owner.quantity);
    for (const seat of owner.seats ?? []) {
      if (this.#seatOwners.get(seat) === owner.id) this.#seatOwners.delete(seat);
    }
  }
}
