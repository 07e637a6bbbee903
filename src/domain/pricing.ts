/**
 * Prices: money in integer minor units (cents) with an ISO 4217 currency per event. A general-admission
 * event sells ticket types (a price, an optional quota inside the event's capacity, an optional max per
 * order); a seated event prices its seats by zone (a whole section, or a range of its rows). Both are
 * "price tiers" to the decider and the stores: one list per event, with sold and held counted per tier.
 *
 * The server computes every line and total from the event's tiers; a buyer names ticket types or seats,
 * never a price.
 */
import type { DomainRefusal } from "./errors.js";

/** What pricing needs of an event's seating (event.ts's Section; not imported, event.ts imports this). */
interface SeatingSection {
  name: string;
  rows: number;
  seatsPerRow: number;
}

/** ISO 4217 alphabetic code shape: three capital letters. */
export const CURRENCY_PATTERN = "^[A-Z]{3}$";
const CURRENCY = new RegExp(CURRENCY_PATTERN);
/** The currency of an event created without one. */
export const DEFAULT_CURRENCY = "EUR";
/** The highest unit price, in minor units (10 million major units at 2 decimals). */
export const MAX_UNIT_PRICE = 1_000_000_000;
/** A tier id: what a buyer names in `items`, what lines and the report name. */
export const TIER_ID_PATTERN = "^[a-z0-9][a-z0-9_-]{0,31}$";
const TIER_ID = new RegExp(TIER_ID_PATTERN);
/** The tier of an event created without ticket types (or of the seats no zone covers). */
export const DEFAULT_TIER_ID = "default";
export const MAX_TIERS = 50;

/** One ticket type (general admission) or price zone (seated). */
export interface PriceTier {
  id: string;
  name: string;
  /** Minor units per ticket. */
  unitPrice: number;
  /** Ticket types: at most this many sold + held; null when only the event's capacity bounds it. */
  quota: number | null;
  /** Ticket types: at most this many of it per order; null when only the event's maxPerOrder bounds it. */
  maxPerOrder: number | null;
  /** Price zones: the section and rows (inclusive) it prices; null for a ticket type or the default zone. */
  section: string | null;
  rowFrom: number | null;
  rowTo: number | null;
}

/** What a line names: a ticket type of a general-admission event or a price zone of a seated one. */
export type LineItem = "ticket_type" | "price_zone";

/** One line of an order or hold: the server's price, never the buyer's. */
export interface Line {
  item: LineItem;
  /** The ticket type's or price zone's id. */
  id: string;
  name: string;
  quantity: number;
  /** Minor units. */
  unitPrice: number;
  /** quantity × unitPrice, minor units. */
  subtotal: number;
}

/** What a buyer orders of a general-admission event with ticket types. */
export interface ItemRequest {
  ticketTypeId: string;
  quantity: number;
}

export interface TicketTypeRequest {
  id?: string;
  name: string;
  price: number;
  quota?: number;
  maxPerOrder?: number;
}

export interface PriceZoneRequest {
  id?: string;
  name: string;
  price: number;
  section: string;
  /** Inclusive row range; the whole section when absent. */
  rows?: { from: number; to: number };
}

function invalid(detail: string): DomainRefusal {
  return { code: "invalid_request", detail };
}

function isWholeNumberIn(value: unknown, min: number, max: number): value is number {
  return typeof value === "number" && Number.isInteger(value) && value >= min && value <= max;
}

/** The currency asked for, or the default; a refusal when it is not three capital letters. */
export function planCurrency(currency: unknown): string | DomainRefusal {
  if (currency === undefined || currency === null) return DEFAULT_CURRENCY;
  if (typeof currency !== "string" || !CURRENCY.test(currency)) {
    return invalid("currency must be an ISO 4217 code: three capital letters, e.g. EUR");
  }
  return currency;
}

/**
 * The tiers of a new event, checked: ticket types for general admission (each quota and max per order
 * within the event's), price zones for seated events (each inside a section, no two overlapping; the
 * seats no zone covers get the default zone at `defaultPrice`). Without any, one default tier.
 */
export function planTiers(request: {
  kind: "general" | "seated";
  capacity: number;
  maxPerOrder: number;
  sections: readonly SeatingSection[] | null;
  price?: number;
  ticketTypes?: TicketTypeRequest[];
  priceZones?: PriceZoneRequest[];
}): PriceTier[] | DomainRefusal {
  const defaultPrice = request.price ?? 0;
  if (!isWholeNumberIn(defaultPrice, 0, MAX_UNIT_PRICE)) {
    return invalid(`price must be a whole number of minor units from 0 to ${MAX_UNIT_PRICE}`);
  }
  const defaultTier = (name: string): PriceTier => ({
    id: DEFAULT_TIER_ID,
    name,
    unitPrice: defaultPrice,
    quota: null,
    maxPerOrder: null,
    section: null,
    rowFrom: null,
    rowTo: null,
  });
  if (request.kind === "general") {
    if (request.priceZones !== undefined) return invalid("priceZones are for seated events");
    const types = request.ticketTypes;
    if (types === undefined) return [defaultTier("General admission")];
    if (request.price !== undefined) return invalid("send price or ticketTypes, not both");
    if (!Array.isArray(types) || types.length === 0 || types.length > MAX_TIERS) {
      return invalid(`ticketTypes must list 1 to ${MAX_TIERS} types`);
    }
    const tiers: PriceTier[] = [];
    for (const [i, type] of types.entries()) {
      const base = checkTierBase(type, i, "ticket type");
      if ("code" in base) return base;
      if (type.quota !== undefined && !isWholeNumberIn(type.quota, 0, request.capacity)) {
        return invalid(`ticket type ${base.id}: quota must be a whole number from 0 to the capacity`);
      }
      if (type.maxPerOrder !== undefined && !isWholeNumberIn(type.maxPerOrder, 1, request.maxPerOrder)) {
        return invalid(`ticket type ${base.id}: maxPerOrder must be from 1 to the event's maxPerOrder`);
      }
      tiers.push({
        ...base,
        quota: type.quota ?? null,
        maxPerOrder: type.maxPerOrder ?? null,
        section: null,
        rowFrom: null,
        rowTo: null,
      });
    }
    return noDuplicateIds(tiers);
  }
  if (request.ticketTypes !== undefined) return invalid("ticketTypes are for general admission events");
  const sections = request.sections ?? [];
  const zones = request.priceZones ?? [];
  if (!Array.isArray(zones) || zones.length > MAX_TIERS) {
    return invalid(`priceZones must list at most ${MAX_TIERS} zones`);
  }
  const tiers: PriceTier[] = [];
  let covered = 0;
  for (const [i, zone] of zones.entries()) {
    const base = checkTierBase(zone, i, "price zone");
    if ("code" in base) return base;
    const section = sections.find((s) => s.name === zone.section);
    if (!section) return invalid(`price zone ${base.id}: no section "${String(zone.section)}"`);
    const rowFrom = zone.rows?.from ?? 1;
    const rowTo = zone.rows?.to ?? section.rows;
    if (!isWholeNumberIn(rowFrom, 1, section.rows) || !isWholeNumberIn(rowTo, rowFrom, section.rows)) {
      return invalid(`price zone ${base.id}: rows must be a range inside section ${section.name}`);
    }
    const overlap = tiers.find(
      (t) => t.section === section.name && (t.rowFrom ?? 0) <= rowTo && rowFrom <= (t.rowTo ?? 0),
    );
    if (overlap) return invalid(`price zones ${overlap.id} and ${base.id} overlap`);
    covered += (rowTo - rowFrom + 1) * section.seatsPerRow;
    tiers.push({ ...base, quota: null, maxPerOrder: null, section: section.name, rowFrom, rowTo });
  }
  const total = sections.reduce((sum, s) => sum + s.rows * s.seatsPerRow, 0);
  if (covered < total) tiers.push(defaultTier("Standard"));
  else if (request.price !== undefined) return invalid("every seat is in a price zone: price is unused");
  return noDuplicateIds(tiers);
}

function checkTierBase(
  tier: { id?: string; name: string; price: number },
  index: number,
  what: string,
): { id: string; name: string; unitPrice: number } | DomainRefusal {
  const id = tier.id ?? `${what === "ticket type" ? "type" : "zone"}-${index + 1}`;
  if (typeof id !== "string" || !TIER_ID.test(id)) {
    return invalid(`a ${what} id is 1 to 32 lower-case letters, digits, "_" or "-"`);
  }
  if (typeof tier.name !== "string" || tier.name.trim() === "" || tier.name.length > 100) {
    return invalid(`${what} ${id}: name must be 1 to 100 characters`);
  }
  if (!isWholeNumberIn(tier.price, 0, MAX_UNIT_PRICE)) {
    return invalid(`${what} ${id}: price must be a whole number of minor units from 0 to ${MAX_UNIT_PRICE}`);
  }
  return { id, name: tier.name, unitPrice: tier.price };
}

function noDuplicateIds(tiers: PriceTier[]): PriceTier[] | DomainRefusal {
  const ids = new Set(tiers.map((t) => t.id));
  return ids.size === tiers.length ? tiers : invalid("two ticket types or price zones share an id");
}

/** The zone that prices a seat: the zone covering its row, else the default zone. */
export function zoneOfSeat(tiers: readonly PriceTier[], section: string, row: number): PriceTier | undefined {
  return (
    tiers.find(
      (t) =>
        t.section === section && t.rowFrom !== null && t.rowTo !== null && t.rowFrom <= row && row <= t.rowTo,
    ) ?? tiers.find((t) => t.id === DEFAULT_TIER_ID)
  );
}

/** A line of `quantity` tickets of `tier`. */
export function lineOf(item: LineItem, tier: PriceTier, quantity: number): Line {
  return {
    item,
    id: tier.id,
    name: tier.name,
    quantity,
    unitPrice: tier.unitPrice,
    subtotal: quantity * tier.unitPrice,
  };
}

/** The sum of the lines' subtotals: the total of an order or hold. */
export function totalOf(lines: readonly Line[]): number {
  return lines.reduce((sum, line) => sum + line.subtotal, 0);
}

/**
 * The lines of an order or hold stored before prices existed: one line of the default tier at 0 (a
 * seated one names its seats, a general one does not).
 */
export function legacyLines(quantity: number, seated: boolean): Line[] {
  return [
    {
      item: seated ? "price_zone" : "ticket_type",
      id: DEFAULT_TIER_ID,
      name: seated ? "Standard" : "General admission",
      quantity,
      unitPrice: 0,
      subtotal: 0,
    },
  ];
}
