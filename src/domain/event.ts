/** Events: general admission with a capacity, or reserved seating as sections × rows × seats. */
import { DomainError } from "./errors.js";
import type { DomainRefusal } from "./errors.js";
import type { PriceTier, PriceZoneRequest, TicketTypeRequest } from "./pricing.js";
import { planCurrency, planTiers } from "./pricing.js";
import type { EventStatus, SaleState } from "./sale-window.js";

export type EventKind = "general" | "seated";

export const MAX_CAPACITY = 1_000_000;
export const DEFAULT_MAX_PER_ORDER = 8;
export const DEFAULT_MAX_PER_CUSTOMER = 8;
/** Section names may not contain "-": it separates the parts of a seat id. */
export const SECTION_NAME_PATTERN = "^[A-Za-z0-9][A-Za-z0-9 _.]{0,31}$";
export const SECTION_NAME = new RegExp(SECTION_NAME_PATTERN);
/** The most rows a section has, and the most seats a row has. */
export const MAX_ROWS = 10_000;
export const MAX_SEATS_PER_ROW = 10_000;
/**
 * A seat id, `<section>-<row>-<seat>`: a section name, then row and seat numbered from 1 (at most
 * MAX_ROWS and MAX_SEATS_PER_ROW, five digits, no leading zero). Printable ASCII, at most 44 characters.
 * The HTTP schema and the stores check seat ids against this one pattern.
 */
export const SEAT_ID_PATTERN = "^([A-Za-z0-9][A-Za-z0-9 _.]{0,31})-([1-9][0-9]{0,4})-([1-9][0-9]{0,4})$";
const SEAT_ID = new RegExp(SEAT_ID_PATTERN);

/** True when `id` has the shape of a seat id (whether the event has that seat is another question). */
export function isSeatId(id: unknown): id is string {
  return typeof id === "string" && SEAT_ID.test(id);
}

export interface Section {
  name: string;
  rows: number;
  seatsPerRow: number;
}

/** What an admin asks for; validated by `planEvent`. */
export interface NewEventRequest {
  name: string;
  description?: string | null;
  capacity?: number;
  seating?: { sections: Section[] };
  startsAt?: string | null;
  maxPerOrder?: number;
  maxPerCustomer?: number;
  /** "published" (the default: on sale at once, or at salesStartAt) or "draft" (publish it later). */
  state?: "draft" | "published";
  salesStartAt?: string | null;
  salesEndAt?: string | null;
  /** Whether a hold may be confirmed (and extended) while the sale is paused; true by default. */
  confirmHoldsWhilePaused?: boolean;
  /** The longest a hold may live, from its creation, however often it is extended. */
  maxHoldLifetimeSeconds?: number;
  currency?: string;
  /** Minor units per ticket of the default tier (an event without ticket types, seats no zone prices). */
  price?: number;
  ticketTypes?: TicketTypeRequest[];
  priceZones?: PriceZoneRequest[];
}

/**
 * What an admin may change after creation (PATCH), and what a sale reads inside its transaction: a
 * store keeps these where its selling transaction reads them, so an edit is seen by every instance's
 * next batch. The capacity never goes below sold + held.
 */
export interface EventSettings {
  name: string;
  description: string | null;
  capacity: number;
  maxPerOrder: number;
  maxPerCustomer: number;
  status: EventStatus;
  salesStartAt: string | null;
  salesEndAt: string | null;
  confirmHoldsWhilePaused: boolean;
  maxHoldLifetimeSeconds: number;
}

/** A PATCH of an event: any of these, checked by `planEventUpdate`. */
export interface EventUpdate {
  name?: string;
  description?: string | null;
  capacity?: number;
  maxPerOrder?: number;
  maxPerCustomer?: number;
  salesStartAt?: string | null;
  salesEndAt?: string | null;
  confirmHoldsWhilePaused?: boolean;
  maxHoldLifetimeSeconds?: number;
}

/** A validated event definition, ready for a store to create: what never changes, and the settings. */
export interface EventPlan extends EventSettings {
  id: string;
  kind: EventKind;
  /** Only for seated events. */
  sections: Section[] | null;
  startsAt: string | null;
  createdAt: string;
  currency: string;
  /** Ticket types (general admission) or price zones (seated); fixed at creation. */
  tiers: PriceTier[];
}

/** A ticket type as the Event resource shows it. */
export interface TicketType {
  id: string;
  name: string;
  price: number;
  quota: number | null;
  maxPerOrder: number | null;
}

/** A price zone as the Event resource shows it. */
export interface PriceZone {
  id: string;
  name: string;
  price: number;
  /** Null for the default zone: the seats no other zone covers. */
  section: string | null;
  rows: { from: number; to: number } | null;
}

/** The v1 Event resource; `available = capacity - sold - held`, all read in one transaction. */
export interface Event {
  id: string;
  name: string;
  kind: EventKind;
  capacity: number;
  sold: number;
  held: number;
  available: number;
  maxPerOrder: number;
  maxPerCustomer: number;
  startsAt: string | null;
  createdAt: string;
  description: string | null;
  /** The state of the sale now, by the database's clock. */
  state: SaleState;
  salesStartAt: string | null;
  salesEndAt: string | null;
  confirmHoldsWhilePaused: boolean;
  maxHoldLifetimeSeconds: number;
  currency: string;
  /** General admission: what a buyer orders in `items` (empty for seated events). */
  ticketTypes: TicketType[];
  /** Seated: how seats are priced (empty for general admission). */
  priceZones: PriceZone[];
}

/** The Event resource of a plan with its settings as stored, its counters and its state. */
export function eventOf(
  plan: EventPlan,
  settings: EventSettings,
  counters: { sold: number; held: number },
  state: SaleState,
): Event {
  const general = plan.kind === "general";
  return {
    id: plan.id,
    name: settings.name,
    kind: plan.kind,
    capacity: settings.capacity,
    sold: counters.sold,
    held: counters.held,
    available: settings.capacity - counters.sold - counters.held,
    maxPerOrder: settings.maxPerOrder,
    maxPerCustomer: settings.maxPerCustomer,
    startsAt: plan.startsAt,
    createdAt: plan.createdAt,
    description: settings.description,
    state,
    salesStartAt: settings.salesStartAt,
    salesEndAt: settings.salesEndAt,
    confirmHoldsWhilePaused: settings.confirmHoldsWhilePaused,
    maxHoldLifetimeSeconds: settings.maxHoldLifetimeSeconds,
    currency: plan.currency,
    ticketTypes: general
      ? plan.tiers.map((t) => ({
          id: t.id,
          name: t.name,
          price: t.unitPrice,
          quota: t.quota,
          maxPerOrder: t.maxPerOrder,
        }))
      : [],
    priceZones: general
      ? []
      : plan.tiers.map((t) => ({
          id: t.id,
          name: t.name,
          price: t.unitPrice,
          section: t.section,
          rows: t.rowFrom === null || t.rowTo === null ? null : { from: t.rowFrom, to: t.rowTo },
        })),
  };
}

/** The settings part of a plan (what a store writes where its sales read it). */
export function settingsOf(plan: EventSettings): EventSettings {
  return {
    name: plan.name,
    description: plan.description,
    capacity: plan.capacity,
    maxPerOrder: plan.maxPerOrder,
    maxPerCustomer: plan.maxPerCustomer,
    status: plan.status,
    salesStartAt: plan.salesStartAt,
    salesEndAt: plan.salesEndAt,
    confirmHoldsWhilePaused: plan.confirmHoldsWhilePaused,
    maxHoldLifetimeSeconds: plan.maxHoldLifetimeSeconds,
  };
}

export type SeatStatus = "available" | "held" | "sold";

export interface SeatMap {
  sections: { name: string; rows: { row: number; seats: { id: string; status: SeatStatus }[] }[] }[];
}

/**
 * 1 to 200 printable characters, not only white space: no control characters, no lone surrogates
 * (text that is not valid UTF-16 has no UTF-8 form to store), no line or paragraph separators. The same
 * rule for every name a person types: event names, customer ids. Compile with the `u` flag.
 */
export const PRINTABLE_TEXT_PATTERN = "^(?=.*\\S)[^\\p{Cc}\\p{Cs}\\p{Zl}\\p{Zp}]{1,200}$";
const EVENT_NAME = new RegExp(PRINTABLE_TEXT_PATTERN, "u");

function invalid(detail: string): DomainError {
  return new DomainError({ code: "invalid_request", detail });
}

function isWholeNumberIn(value: unknown, min: number, max: number): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= min && value <= max;
}

/** Checks an event request against the rules and fixes its id, capacity and defaults. */
export function planEvent(request: NewEventRequest, id: string, now: Date): EventPlan {
  const name = request.name;
  if (typeof name !== "string" || !EVENT_NAME.test(name)) {
    throw invalid("name must be 1 to 200 printable characters");
  }
  const maxPerOrder = request.maxPerOrder ?? DEFAULT_MAX_PER_ORDER;
  const maxPerCustomer = request.maxPerCustomer ?? DEFAULT_MAX_PER_CUSTOMER;
  if (!isWholeNumberIn(maxPerOrder, 1, 1000))
    throw invalid("maxPerOrder must be a whole number from 1 to 1000");
  if (!isWholeNumberIn(maxPerCustomer, 1, MAX_CAPACITY)) {
    throw invalid(`maxPerCustomer must be a whole number from 1 to ${MAX_CAPACITY}`);
  }
  const startsAt = timeOf(request.startsAt, "startsAt");
  const salesStartAt = timeOf(request.salesStartAt, "salesStartAt");
  const salesEndAt = timeOf(request.salesEndAt, "salesEndAt");
  checkWindow(salesStartAt, salesEndAt);
  const state = request.state ?? "published";
  if (state !== "draft" && state !== "published") throw invalid('state must be "draft" or "published"');
  const currency = planCurrency(request.currency);
  if (typeof currency !== "string") throw new DomainError(currency);
  const base = {
    id,
    name,
    description: descriptionOf(request.description),
    maxPerOrder,
    maxPerCustomer,
    startsAt,
    createdAt: now.toISOString(),
    status: state,
    salesStartAt,
    salesEndAt,
    confirmHoldsWhilePaused: booleanOf(request.confirmHoldsWhilePaused, true, "confirmHoldsWhilePaused"),
    maxHoldLifetimeSeconds: lifetimeOf(request.maxHoldLifetimeSeconds),
    currency,
  };

  if (request.seating !== undefined) {
    if (request.capacity !== undefined) {
      throw invalid("a seated event takes its capacity from its seating; do not send both");
    }
    const sections = request.seating.sections;
    if (!Array.isArray(sections) || sections.length === 0 || sections.length > 100) {
      throw invalid("seating.sections must list 1 to 100 sections");
    }
    const names = new Set<string>();
    let capacity = 0;
    for (const section of sections) {
      if (!SECTION_NAME.test(section.name)) {
        throw invalid(`section name "${section.name}" must be 1 to 32 letters, digits, spaces, "_" or "."`);
      }
      if (names.has(section.name)) throw invalid(`section "${section.name}" appears twice`);
      names.add(section.name);
      if (
        !isWholeNumberIn(section.rows, 1, MAX_ROWS) ||
        !isWholeNumberIn(section.seatsPerRow, 1, MAX_SEATS_PER_ROW)
      ) {
        throw invalid(`rows and seatsPerRow must be whole numbers from 1 to ${MAX_ROWS}`);
      }
      capacity += section.rows * section.seatsPerRow;
    }
    if (capacity > MAX_CAPACITY) throw invalid(`capacity is at most ${MAX_CAPACITY} seats`);
    const planned = sections.map((s) => ({ name: s.name, rows: s.rows, seatsPerRow: s.seatsPerRow }));
    const tiers = tiersOf(request, "seated", capacity, maxPerOrder, planned);
    return { ...base, kind: "seated", capacity, sections: planned, tiers };
  }
  if (!isWholeNumberIn(request.capacity, 1, MAX_CAPACITY)) {
    throw invalid(`capacity must be a whole number from 1 to ${MAX_CAPACITY}`);
  }
  const tiers = tiersOf(request, "general", request.capacity, maxPerOrder, null);
  return { ...base, kind: "general", capacity: request.capacity, sections: null, tiers };
}

function tiersOf(
  request: NewEventRequest,
  kind: EventKind,
  capacity: number,
  maxPerOrder: number,
  sections: Section[] | null,
): PriceTier[] {
  const tiers = planTiers({
    kind,
    capacity,
    maxPerOrder,
    sections,
    price: request.price,
    ticketTypes: request.ticketTypes,
    priceZones: request.priceZones,
  });
  if ("code" in tiers) throw new DomainError(tiers);
  return tiers;
}

/**
 * The bounds of `maxHoldLifetimeSeconds`: at least a hold's longest TTL (HOLD_TTL_SECONDS.max in
 * sale.ts, which imports this file), at most a day.
 */
export const MAX_HOLD_LIFETIME_SECONDS = { min: 1800, max: 86_400, default: 3600 } as const;

function timeOf(value: string | null | undefined, field: string): string | null {
  if (value === undefined || value === null) return null;
  const parsed = typeof value === "string" ? Date.parse(value) : NaN;
  if (typeof value !== "string" || !RFC3339.test(value) || Number.isNaN(parsed)) {
    throw invalid(`${field} must be an RFC 3339 time`);
  }
  return new Date(parsed).toISOString();
}

function checkWindow(salesStartAt: string | null, salesEndAt: string | null): void {
  if (salesStartAt !== null && salesEndAt !== null && Date.parse(salesEndAt) <= Date.parse(salesStartAt)) {
    throw invalid("salesEndAt must be after salesStartAt");
  }
}

function descriptionOf(value: string | null | undefined): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== "string" || value.length > 5000 || /\p{Cs}/u.test(value)) {
    throw invalid("description must be at most 5000 characters of text");
  }
  return value;
}

function booleanOf(value: boolean | undefined, fallback: boolean, field: string): boolean {
  if (value === undefined) return fallback;
  if (typeof value !== "boolean") throw invalid(`${field} must be true or false`);
  return value;
}

function lifetimeOf(value: number | undefined): number {
  const seconds = value ?? MAX_HOLD_LIFETIME_SECONDS.default;
  if (!isWholeNumberIn(seconds, MAX_HOLD_LIFETIME_SECONDS.min, MAX_HOLD_LIFETIME_SECONDS.max)) {
    throw invalid(
      `maxHoldLifetimeSeconds must be a whole number from ${MAX_HOLD_LIFETIME_SECONDS.min} to ${MAX_HOLD_LIFETIME_SECONDS.max}`,
    );
  }
  return seconds;
}

/**
 * The settings after a PATCH, checked against the rules and against what is taken now (`taken` =
 * sold + held, read in the same transaction as the write): a capacity below it is refused with
 * `capacity_below_taken`. A seated event's capacity is its seats: it cannot be edited. Returns the new
 * settings, or the refusal.
 */
export function planEventUpdate(
  plan: Pick<EventPlan, "kind" | "tiers">,
  current: EventSettings,
  update: EventUpdate,
  taken: number,
): EventSettings | DomainRefusal {
  try {
    const next: EventSettings = { ...current };
    if (update.name !== undefined) {
      if (typeof update.name !== "string" || !EVENT_NAME.test(update.name)) {
        throw invalid("name must be 1 to 200 printable characters");
      }
      next.name = update.name;
    }
    if (update.description !== undefined) next.description = descriptionOf(update.description);
    if (update.maxPerOrder !== undefined) {
      if (!isWholeNumberIn(update.maxPerOrder, 1, 1000))
        throw invalid("maxPerOrder must be a whole number from 1 to 1000");
      const widest = Math.max(0, ...plan.tiers.map((t) => t.maxPerOrder ?? 0));
      if (update.maxPerOrder < widest) {
        throw invalid(`maxPerOrder must be at least ${widest}, a ticket type's own maxPerOrder`);
      }
      next.maxPerOrder = update.maxPerOrder;
    }
    if (update.maxPerCustomer !== undefined) {
      if (!isWholeNumberIn(update.maxPerCustomer, 1, MAX_CAPACITY)) {
        throw invalid(`maxPerCustomer must be a whole number from 1 to ${MAX_CAPACITY}`);
      }
      next.maxPerCustomer = update.maxPerCustomer;
    }
    if (update.salesStartAt !== undefined) next.salesStartAt = timeOf(update.salesStartAt, "salesStartAt");
    if (update.salesEndAt !== undefined) next.salesEndAt = timeOf(update.salesEndAt, "salesEndAt");
    checkWindow(next.salesStartAt, next.salesEndAt);
    if (update.confirmHoldsWhilePaused !== undefined) {
      next.confirmHoldsWhilePaused = booleanOf(
        update.confirmHoldsWhilePaused,
        true,
        "confirmHoldsWhilePaused",
      );
    }
    if (update.maxHoldLifetimeSeconds !== undefined) {
      next.maxHoldLifetimeSeconds = lifetimeOf(update.maxHoldLifetimeSeconds);
    }
    if (update.capacity !== undefined) {
      if (plan.kind === "seated")
        throw invalid("a seated event's capacity is its seats; it cannot be edited");
      if (!isWholeNumberIn(update.capacity, 1, MAX_CAPACITY)) {
        throw invalid(`capacity must be a whole number from 1 to ${MAX_CAPACITY}`);
      }
      const quotas = Math.max(0, ...plan.tiers.map((t) => t.quota ?? 0));
      if (update.capacity < quotas)
        throw invalid(`capacity must be at least ${quotas}, a ticket type's quota`);
      if (update.capacity < taken) {
        return {
          code: "capacity_below_taken",
          detail: `capacity cannot go below the ${taken} tickets sold or held`,
        };
      }
      next.capacity = update.capacity;
    }
    return next;
  } catch (error) {
    if (error instanceof DomainError) return error.refusal;
    throw error;
  }
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;

/** The id of a seat: "<section>-<row>-<seat>", rows and seats numbered from 1. */
export function seatId(section: string, row: number, seat: number): string {
  return `${section}-${row}-${seat}`;
}

/** Every seat of a plan, in map order. */
export function* seatsOf(plan: Pick<EventPlan, "sections">): Generator<{
  id: string;
  section: string;
  row: number;
  seat: number;
}> {
  for (const section of plan.sections ?? []) {
    for (let row = 1; row <= section.rows; row++) {
      for (let seat = 1; seat <= section.seatsPerRow; seat++) {
        yield { id: seatId(section.name, row, seat), section: section.name, row, seat };
      }
    }
  }
}

/** Parses a seat id against an event's sections; null when no such seat exists. */
export function parseSeatId(
  id: string,
  sections: readonly Section[],
): { section: string; row: number; seat: number } | null {
  const match = typeof id === "string" ? SEAT_ID.exec(id) : null;
  if (!match) return null;
  const [, sectionName, rowText, seatText] = match;
  const section = sections.find((s) => s.name === sectionName);
  const row = Number(rowText);
  const seat = Number(seatText);
  if (!section || row > section.rows || seat > section.seatsPerRow) return null;
  return { section: section.name, row, seat };
}
