/**
 * A SaleView kept in memory and brought up to date by each change as it is written, so that every
 * command of a batch is decided exactly as if it ran alone, in order. The reference model keeps one
 * for the whole event; a store keeps one per batch, filled with what it read under the event's write
 * lock about the batch's own customers and seats, up front (PostgreSQL: in one round trip; SQLite: in
 * one statement each), or on first use through `lookups` for one it did not read then (SQLite: a read
 * inside the transaction sees every earlier write of the batch, and a customer or seat is read before
 * any change of the batch touches it here). The holds, orders and first answers a command names are
 * looked up through `lookups` too.
 */
import type { Change, SaleRules, SaleView } from "./decide.js";
import type { Hold, IdempotencyRecord, Order } from "./sale.js";

/** Sold and held tickets, in all and per tier (ticket type or price zone; a tier not listed has none). */
export interface TallyCounters {
  sold: number;
  held: number;
  tiers: ReadonlyMap<string, { sold: number; held: number }>;
}

export interface SaleLookups {
  /** The hold, when it belongs to this event (see SaleView.hold). */
  hold(holdId: string): Hold | undefined;
  /** The order, when it belongs to this event (see SaleView.order). */
  order(orderId: string): Order | undefined;
  /** The first answer kept for an idempotency key of this event. */
  firstAnswer(key: string): IdempotencyRecord | undefined;
  /** Reads a customer's tickets that were not given up front; without it, such a customer has none. */
  ticketsOf?(customerId: string): number;
  /** Reads a seat's owner that was not given up front; without it, such a seat is free. */
  seatOwner?(seatId: string): string | undefined;
  /** The database's clock, as read inside the transaction (see SaleView.clockMs). */
  clockMs(): number;
}

export class SaleTally implements SaleView {
  /** The event's rules; the reference model replaces them when an admin edits the event. */
  rules: SaleRules;
  /** The counters as read, on first use (a seated event's decisions never ask for them). */
  readonly #readCounters: () => TallyCounters;
  #read: TallyCounters | null = null;
  /** How far the changes applied so far moved the counters, in all and per tier. */
  #soldMoved = 0;
  #heldMoved = 0;
  readonly #tierMoved = new Map<string, { sold: number; held: number }>();
  /** Tickets per customer that was read (or took tickets). */
  readonly #tickets: Map<string, number>;
  /** seat id -> the hold or order that has it, or null when known to be free; absent when not read. */
  readonly #seatOwners: Map<string, string | null>;
  readonly #lookups: SaleLookups;

  constructor(
    rules: SaleRules,
    counters: () => TallyCounters,
    tickets: Iterable<readonly [string, number]>,
    /** seat id -> its hold or order, or null for a seat read and found free. */
    seatOwners: Iterable<readonly [string, string | null]>,
    lookups: SaleLookups,
  ) {
    this.rules = rules;
    this.#readCounters = counters;
    this.#tickets = new Map(tickets);
    this.#seatOwners = new Map(seatOwners);
    this.#lookups = lookups;
  }

  counters(): { sold: number; held: number } {
    this.#read ??= this.#readCounters();
    return { sold: this.#read.sold + this.#soldMoved, held: this.#read.held + this.#heldMoved };
  }

  tierCounters(tierId: string): { sold: number; held: number } {
    this.#read ??= this.#readCounters();
    const read = this.#read.tiers.get(tierId) ?? { sold: 0, held: 0 };
    const moved = this.#tierMoved.get(tierId) ?? { sold: 0, held: 0 };
    return { sold: read.sold + moved.sold, held: read.held + moved.held };
  }

  clockMs(): number {
    return this.#lookups.clockMs();
  }

  /** How far the changes applied so far moved the counters (what a store adds to its row). */
  moved(): { sold: number; held: number } {
    return { sold: this.#soldMoved, held: this.#heldMoved };
  }

  /** How far the changes applied so far moved each tier's counters (tiers not moved are absent). */
  movedTiers(): ReadonlyMap<string, { sold: number; held: number }> {
    return this.#tierMoved;
  }

  ticketsOf(customerId: string): number {
    let tickets = this.#tickets.get(customerId);
    if (tickets === undefined && this.#lookups.ticketsOf) {
      tickets = this.#lookups.ticketsOf(customerId);
      this.#tickets.set(customerId, tickets);
    }
    return tickets ?? 0;
  }

  seatOwner(seatId: string): string | undefined {
    let owner = this.#seatOwners.get(seatId);
    if (owner === undefined && this.#lookups.seatOwner) {
      owner = this.#lookups.seatOwner(seatId) ?? null;
      this.#seatOwners.set(seatId, owner);
    }
    return owner ?? undefined;
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
        this.#soldMoved += change.order.quantity;
        this.#moveTiers(change.order, 1, 0);
        this.#take(change.order);
        return;
      case "hold":
        this.#heldMoved += change.hold.quantity;
        this.#moveTiers(change.hold, 0, 1);
        this.#take(change.hold);
        return;
      case "extend-hold":
        return;
      case "confirm":
        this.#heldMoved -= change.hold.quantity;
        this.#soldMoved += change.hold.quantity;
        this.#moveTiers(change.hold, 1, -1);
        for (const seat of change.hold.seats ?? []) {
          if (this.#seatOwners.get(seat) === change.hold.id) this.#seatOwners.set(seat, change.order.id);
        }
        return;
      case "end-hold":
        this.#heldMoved -= change.hold.quantity;
        this.#moveTiers(change.hold, 0, -1);
        this.#giveBack(change.hold);
        return;
      case "cancel":
        this.#soldMoved -= change.order.quantity;
        this.#moveTiers(change.order, -1, 0);
        this.#giveBack(change.order);
        return;
    }
  }

  /** Moves each line's quantity times `sold` and `held` on its tier. */
  #moveTiers(owner: Order | Hold, sold: number, held: number): void {
    for (const line of owner.lines) {
      const moved = this.#tierMoved.get(line.id) ?? { sold: 0, held: 0 };
      this.#tierMoved.set(line.id, {
        sold: moved.sold + sold * line.quantity,
        held: moved.held + held * line.quantity,
      });
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
      if (this.#seatOwners.get(seat) === owner.id) this.#seatOwners.set(seat, null);
    }
  }
}
