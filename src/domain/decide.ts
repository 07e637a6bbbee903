/**
 * The selling rule, decided once. `decide` is a pure function of a read-only view of one event (its
 * rules, its counters, the customers' tickets, the seats' owners, the holds and orders a command names,
 * the first answers kept for idempotency keys) and a command: it returns the command's Outcome, the one
 * change to write, and the answer to keep for the command's key. It does no I/O and keeps no state.
 *
 * The reference model (inventory.ts) and every store call it: the model applies the change to its maps,
 * a store reads the view under its event's write lock and writes the change with guarded statements and
 * constraints that refuse on their own what the decider would, so correctness never rests on this code
 * alone. A new rule (a price, a sale window) is one change here.
 */
import type { EventPlan } from "./event.js";
import { parseSeatId } from "./event.js";
import type { DomainRefusal } from "./errors.js";
import type { Line, PriceTier } from "./pricing.js";
import { lineOf, totalOf, zoneOfSeat } from "./pricing.js";
import { refusals } from "./refusals.js";
import { refuseCheckout, refuseOutsideSale } from "./sale-window.js";
import type { Command, FirstAnswer, Hold, IdempotencyRecord, Order, Outcome, Selection } from "./sale.js";
import { checkSelection } from "./sale.js";

/**
 * The rules of an event that a sale is decided on: what was fixed when it was created (kind, seats,
 * currency, ticket types or price zones) and its settings as read in the selling transaction (capacity,
 * limits, status and sale window), so that an admin's edit or pause is seen by the next batch of every
 * instance.
 */
export type SaleRules = Pick<
  EventPlan,
  | "id"
  | "kind"
  | "capacity"
  | "sections"
  | "maxPerOrder"
  | "maxPerCustomer"
  | "currency"
  | "tiers"
  | "status"
  | "salesStartAt"
  | "salesEndAt"
  | "confirmHoldsWhilePaused"
  | "maxHoldLifetimeSeconds"
>;

/**
 * What a decision reads, as the store sees it under the event's write lock. A store fills it with what
 * its batch's commands ask about; it only has to answer for those.
 */
export interface SaleView {
  /** The event's rules. */
  readonly rules: SaleRules;
  /** Tickets in confirmed orders and in active holds. */
  counters(): { sold: number; held: number };
  /** Tickets of one ticket type or price zone in confirmed orders and in active holds. */
  tierCounters(tierId: string): { sold: number; held: number };
  /**
   * The DATABASE's clock (ms since the epoch), read inside the transaction: the sale window is judged by
   * it, never by an instance's clock, so every instance opens and closes the sale at the same instant.
   */
  clockMs(): number;
  /** Tickets of the customer's confirmed orders and active holds. */
  ticketsOf(customerId: string): number;
  /** The hold or order that has the seat; undefined when it is free. */
  seatOwner(seatId: string): string | undefined;
  /** The hold, when it belongs to this event. */
  hold(holdId: string): Hold | undefined;
  /** The order, when it belongs to this event. */
  order(orderId: string): Order | undefined;
  /** The first answer kept for an idempotency key of this event. */
  firstAnswer(key: string): IdempotencyRecord | undefined;
}

/**
 * The one change a decision writes. Each carries the records as they are after it; what goes back
 * (tickets, the customer's count, seats) is the record's own quantity, customer and seats.
 */
export type Change =
  /** A new confirmed order takes tickets (and seats). */
  | { type: "sell"; order: Order }
  /** A new active hold takes tickets (and seats) until it expires. */
  | { type: "hold"; hold: Hold }
  /** An active hold becomes a confirmed order with the same tickets and seats. */
  | { type: "confirm"; hold: Hold; order: Order }
  /** An active hold ends ("released" or "expired") and gives its tickets back. */
  | { type: "end-hold"; hold: Hold & { status: "released" | "expired" } }
  /** A confirmed order is cancelled and gives its tickets back. */
  | { type: "cancel"; order: Order }
  /** An active hold gets a later expiry. */
  | { type: "extend-hold"; hold: Hold };

export interface Decision {
  /** The answer to the command, as its caller gets it. */
  outcome: Outcome;
  /** What to write; null when nothing changes. */
  change: Change | null;
  /** The first answer to keep for the command's idempotency key; null when nothing is kept. */
  keep: IdempotencyRecord | null;
}

/** Where the ids of new orders and holds come from: the caller's, so that the decider stays pure. */
export interface NewIds {
  /** The id of a new order of this event. */
  order(): string;
  /** The id of a new hold of this event. */
  hold(): string;
}

/**
 * The answer already given to the command's idempotency key: its first answer again (`replayed`), or
 * `idempotency_key_reused` when the key came with another request. Null when the command is to be
 * decided afresh. A store that must read rows before deciding asks this first, and reads nothing for a
 * replay.
 */
export function replayOf(view: SaleView, command: Command): Decision | null {
  const idempotency = "idempotency" in command ? command.idempotency : null;
  if (idempotency === null) return null;
  const first = view.firstAnswer(idempotency.key);
  if (first === undefined) return null;
  const outcome: Outcome =
    first.fingerprint === idempotency.fingerprint
      ? { ...first.answer, replayed: true }
      : { ok: false, refusal: refusals.idempotencyKeyReused(), replayed: false };
  return { outcome, change: null, keep: null };
}

/**
 * Decides one command that passed `checkCommand` (sale.ts). Refusals are answers too: they are kept for
 * the command's key like any first answer.
 */
export function decide(view: SaleView, command: Command, now: Date, ids: NewIds): Decision {
  const replay = replayOf(view, command);
  if (replay) return replay;
  const { answer, change } = decideAfresh(view, command, now, ids);
  const idempotency = "idempotency" in command ? command.idempotency : null;
  return {
    outcome: { ...answer, replayed: false },
    change,
    keep:
      idempotency === null ? null : { key: idempotency.key, fingerprint: idempotency.fingerprint, answer },
  };
}

function decideAfresh(
  view: SaleView,
  command: Command,
  now: Date,
  ids: NewIds,
): { answer: FirstAnswer; change: Change | null } {
  switch (command.type) {
    case "purchase": {
      const taken = takeable(view, command.customerId, command.selection);
      if ("code" in taken) return refused(taken);
      const order: Order = {
        id: ids.order(),
        eventId: view.rules.id,
        customerId: command.customerId,
        quantity: command.selection.quantity,
        seats: command.selection.seats,
        status: "confirmed",
        createdAt: now.toISOString(),
        cancelledAt: null,
        lines: taken.lines,
        total: totalOf(taken.lines),
        currency: view.rules.currency,
        paymentReference: null,
      };
      return { answer: { ok: true, value: order }, change: { type: "sell", order } };
    }
    case "hold": {
      const taken = takeable(view, command.customerId, command.selection);
      if ("code" in taken) return refused(taken);
      const hold: Hold = {
        id: ids.hold(),
        eventId: view.rules.id,
        customerId: command.customerId,
        quantity: command.selection.quantity,
        seats: command.selection.seats,
        status: "active",
        expiresAt: new Date(now.getTime() + command.ttlSeconds * 1000).toISOString(),
        createdAt: now.toISOString(),
        lines: taken.lines,
        total: totalOf(taken.lines),
        currency: view.rules.currency,
      };
      return { answer: { ok: true, value: hold }, change: { type: "hold", hold } };
    }
    case "confirm-hold":
    case "extend-hold": {
      const hold = view.hold(command.holdId);
      if (!hold) return refused(refusals.holdNotFound());
      if (hold.status === "active" && isOverdue(hold, now)) {
        // Overdue but not swept yet: it expires now, and gives its tickets back.
        return {
          answer: { ok: false, refusal: refusals.holdExpired() },
          change: { type: "end-hold", hold: { ...hold, status: "expired" } },
        };
      }
      if (hold.status === "expired") return refused(refusals.holdExpired());
      if (hold.status !== "active") return refused(refusals.holdNotActive(hold.status));
      const closed = refuseCheckout(view.rules);
      if (closed) return refused(closed);
      if (command.type === "extend-hold") {
        const latestMs = Date.parse(hold.createdAt) + view.rules.maxHoldLifetimeSeconds * 1000;
        const expiresAtMs = Math.min(now.getTime() + command.ttlSeconds * 1000, latestMs);
        if (expiresAtMs <= Date.parse(hold.expiresAt)) {
          return refused(refusals.holdExtensionLimit(new Date(latestMs).toISOString()));
        }
        const extended: Hold = { ...hold, expiresAt: new Date(expiresAtMs).toISOString() };
        return { answer: { ok: true, value: extended }, change: { type: "extend-hold", hold: extended } };
      }
      const order: Order = {
        id: ids.order(),
        eventId: view.rules.id,
        customerId: hold.customerId,
        quantity: hold.quantity,
        seats: hold.seats,
        status: "confirmed",
        createdAt: now.toISOString(),
        cancelledAt: null,
        lines: hold.lines,
        total: hold.total,
        currency: hold.currency,
        paymentReference: command.paymentReference ?? null,
      };
      return {
        answer: { ok: true, value: order },
        change: { type: "confirm", hold: { ...hold, status: "confirmed" }, order },
      };
    }
    case "release-hold": {
      const hold = view.hold(command.holdId);
      if (!hold) return refused(refusals.holdNotFound());
      // Releasing a hold that is no longer active changes nothing and answers it as it is.
      if (hold.status !== "active") return { answer: { ok: true, value: hold }, change: null };
      const released = { ...hold, status: "released" as const };
      return { answer: { ok: true, value: released }, change: { type: "end-hold", hold: released } };
    }
    case "cancel-order": {
      const order = view.order(command.orderId);
      if (!order) return refused(refusals.orderNotFound());
      // A repeat cancel answers the cancelled order and gives nothing more back.
      if (order.status !== "confirmed") return { answer: { ok: true, value: order }, change: null };
      const cancelled: Order = { ...order, status: "cancelled", cancelledAt: now.toISOString() };
      return { answer: { ok: true, value: cancelled }, change: { type: "cancel", order: cancelled } };
    }
  }
}

/** True once the hold's time has come (at its expiry instant, too). */
export function isOverdue(hold: Pick<Hold, "expiresAt">, now: Date): boolean {
  return Date.parse(hold.expiresAt) <= now.getTime();
}

function refused(refusal: DomainRefusal): { answer: FirstAnswer; change: null } {
  return { answer: { ok: false, refusal }, change: null };
}

/**
 * The lines of a purchase or a new hold of `selection`, or why it cannot be taken now: the selection
 * against the event's kind and limits, the sale's state by the database's clock, the seats (each must
 * exist and be free) or the ticket types (each known, within its own max per order and quota) and the
 * tickets left, then the customer's limit. Prices come from the event's tiers only.
 */
function takeable(
  view: SaleView,
  customerId: string,
  selection: Selection,
): { lines: Line[] } | DomainRefusal {
  const rules = view.rules;
  const shape = checkSelection(selection, rules);
  if (shape) return shape;
  const outside = refuseOutsideSale(rules, view.clockMs());
  if (outside) return outside;
  let lines: Line[];
  if (selection.seats !== null) {
    const bySeat = selection.seats.map((id) => ({ id, seat: parseSeatId(id, rules.sections ?? []) }));
    const unknown = bySeat.filter((s) => s.seat === null).map((s) => s.id);
    if (unknown.length > 0) return refusals.noSuchSeats(unknown);
    const taken = selection.seats.filter((id) => view.seatOwner(id) !== undefined);
    if (taken.length > 0) return refusals.seatsUnavailable(taken);
    const perZone = new Map<PriceTier, number>();
    for (const { seat } of bySeat) {
      const zone = seat && zoneOfSeat(rules.tiers, seat.section, seat.row);
      if (!zone) return refusals.noSuchSeats([]);
      perZone.set(zone, (perZone.get(zone) ?? 0) + 1);
    }
    lines = rules.tiers.flatMap((t) => {
      const quantity = perZone.get(t);
      return quantity === undefined ? [] : [lineOf("price_zone", t, quantity)];
    });
  } else {
    const items = selection.items ?? null;
    let wanted: { tier: PriceTier; quantity: number }[];
    if (items === null) {
      const [only, ...others] = rules.tiers;
      if (!only || others.length > 0) return refusals.sendItems();
      wanted = [{ tier: only, quantity: selection.quantity }];
    } else {
      wanted = [];
      for (const item of items) {
        const tier = rules.tiers.find((t) => t.id === item.ticketTypeId);
        if (!tier) return refusals.unknownTicketType(item.ticketTypeId);
        wanted.push({ tier, quantity: item.quantity });
      }
    }
    for (const { tier, quantity } of wanted) {
      if (tier.maxPerOrder !== null && quantity > tier.maxPerOrder) {
        return refusals.ticketTypeOrderLimit(tier.name, tier.maxPerOrder);
      }
      if (tier.quota !== null) {
        const { sold, held } = view.tierCounters(tier.id);
        if (quantity > tier.quota - sold - held) return refusals.ticketTypeSoldOut(tier.name, quantity);
      }
    }
    const { sold, held } = view.counters();
    if (selection.quantity > rules.capacity - sold - held) return refusals.soldOut(selection.quantity);
    lines = wanted.map(({ tier, quantity }) => lineOf("ticket_type", tier, quantity));
  }
  if (view.ticketsOf(customerId) + selection.quantity > rules.maxPerCustomer) {
    return refusals.customerLimitReached(rules.maxPerCustomer);
  }
  return { lines };
}
