/** Events: general admission with a capacity, or reserved seating as sections × rows × seats. */
import { DomainError } from "./errors.js";

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
  capacity?: number;
  seating?: { sections: Section[] };
  startsAt?: string | null;
  maxPerOrder?: number;
  maxPerCustomer?: number;
}

/** A validated event definition, ready for a store to create. */
export interface EventPlan {
  id: string;
  name: string;
  kind: EventKind;
  capacity: number;
  /** Only for seated events. */
  sections: Section[] | null;
  maxPerOrder: number;
  maxPerCustomer: number;
  startsAt: string | null;
  createdAt: string;
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
  let startsAt: string | null = null;
  if (request.startsAt !== undefined && request.startsAt !== null) {
    const parsed = Date.parse(request.startsAt);
    if (!RFC3339.test(request.startsAt) || Number.isNaN(parsed)) {
      throw invalid("startsAt must be an RFC 3339 time");
    }
    startsAt = new Date(parsed).toISOString();
  }
  const base = { id, name, maxPerOrder, maxPerCustomer, startsAt, createdAt: now.toISOString() };

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
    return {
      ...base,
      kind: "seated",
      capacity,
      sections: sections.map((s) => ({ name: s.name, rows: s.rows, seatsPerRow: s.seatsPerRow })),
    };
  }
  if (!isWholeNumberIn(request.capacity, 1, MAX_CAPACITY)) {
    throw invalid(`capacity must be a whole number from 1 to ${MAX_CAPACITY}`);
  }
  return { ...base, kind: "general", capacity: request.capacity, sections: null };
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
