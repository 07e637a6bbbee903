/**
 * What the waiting room's backends share: the rows as both databases name their columns, their mapping
 * to the store's records, and the rules both apply inside their transactions: when a join is in the
 * pre-queue, when the opening can no longer move, what leaving does, how many buyers a pass lets in and
 * when.
 */
import type { Place, Room, RoomSettings } from "./waiting-room-store.js";

export interface RoomRow {
  event_id: string;
  generation: string;
  admission_rate: number | string | null;
  max_active: number | string | null;
  session_seconds: number | string;
  opens_at_ms: number | string;
  prequeue_opens_at_ms: number | string;
  drawn: number | string;
  prequeue_count: number | string;
  later_count: number | string;
  admitted_through: number | string;
  next_slot_ms: number | string;
}

export interface PlaceRow {
  identity: string;
  place: number | string | null;
  prequeue: number | string;
  joined_at_ms: number | string;
  admit_at_ms: number | string | null;
  session_ends_at_ms: number | string | null;
  left_at_ms: number | string | null;
  collected_at_ms: number | string | null;
}

export const PLACE_COLUMNS =
  "identity, place, prequeue, joined_at_ms, admit_at_ms, session_ends_at_ms, left_at_ms, collected_at_ms";

/** null stays null; a bigint that pg sends as text becomes a number. */
const num = (value: number | string | null): number | null => (value === null ? null : Number(value));

export function toRoom(row: RoomRow): Room {
  return {
    eventId: row.event_id,
    generation: row.generation,
    admissionRatePerSecond: num(row.admission_rate),
    maxActiveShoppers: num(row.max_active),
    sessionSeconds: Number(row.session_seconds),
    opensAtMs: Number(row.opens_at_ms),
    preQueueOpensAtMs: Number(row.prequeue_opens_at_ms),
    drawn: Boolean(row.drawn),
    preQueueCount: Number(row.prequeue_count),
    laterCount: Number(row.later_count),
    admittedThrough: Number(row.admitted_through),
    nextSlotMs: Number(row.next_slot_ms),
  };
}

export function toPlace(row: PlaceRow): Place {
  return {
    identity: row.identity,
    place: num(row.place),
    preQueue: Boolean(row.prequeue),
    joinedAtMs: Number(row.joined_at_ms),
    admitAtMs: num(row.admit_at_ms),
    sessionEndsAtMs: num(row.session_ends_at_ms),
    leftAtMs: num(row.left_at_ms),
    collectedAtMs: num(row.collected_at_ms),
  };
}

/** A join at `nowMs` (the store's clock, inside the join's transaction) goes to the pre-queue. */
export function joinsPreQueue(room: Room, nowMs: number): boolean {
  return nowMs < room.opensAtMs && !room.drawn;
}

/** The room has opened (or been drawn): new settings may not move its opening. */
export function openingMoves(room: Room, settings: RoomSettings, nowMs: number): boolean {
  return (room.drawn || nowMs >= room.opensAtMs) && settings.opensAtMs !== room.opensAtMs;
}

/**
 * Leaving from the pre-queue before the draw takes the place away altogether (no later place exists
 * yet); any other leaving keeps the place, marked left (a session cut short ends now).
 */
export function leavingRemovesPlace(room: Room, place: Pick<Place, "place">, nowMs: number): boolean {
  return place.place === null && !room.drawn && nowMs < room.opensAtMs;
}

export interface AdmissionWindow {
  /** Buyers this pass may let in (Infinity: all who wait). */
  count: number;
  /** The first admission time; the i-th buyer is let in at `startMs + i * intervalMs`. */
  startMs: number;
  intervalMs: number;
}

/**
 * The pre-queue's buyers learn their places from one poll each just after the draw, spread over this long
 * (waiting-room/queue-status.ts).
 */
export const PRE_QUEUE_SPREAD_MS = 1000;

/**
 * A room with a pre-queue lets its first buyer in this long after the opening: by then every buyer of the
 * pre-queue has asked once after the draw (within a pass and PRE_QUEUE_SPREAD_MS) and learnt its place,
 * and the first few seconds' buyers their admission times and tokens. Admitting from the opening itself
 * gave its first slots to buyers who could only learn them later, and who then bought together (the
 * benchmark's pre-queue: 40 sell requests in the opening second, then up to 1.6× the rate for seconds).
 */
export const OPENING_LEAD_MS = PRE_QUEUE_SPREAD_MS + 1000;

/** The earliest admission time of a room: its opening, after the lead when it has a pre-queue. */
export function firstSlotOf(room: Room): number {
  return room.opensAtMs + (room.preQueueCount > 0 ? OPENING_LEAD_MS : 0);
}

/** How many buyers a pass may let in now, and from when: the one rule both backends use. */
export function admissionWindow(
  room: Room,
  nowMs: number,
  lookAheadMs: number,
  active: number,
): AdmissionWindow {
  const capRoom = room.maxActiveShoppers === null ? Infinity : Math.max(0, room.maxActiveShoppers - active);
  if (room.admissionRatePerSecond === null) return { count: capRoom, startMs: nowMs, intervalMs: 0 };
  const intervalMs = 1000 / room.admissionRatePerSecond;
  // Never before the slot after the last admission: an idle room does not save up a burst either,
  // since the first slot is never before now.
  const startMs = Math.max(room.nextSlotMs, nowMs, firstSlotOf(room));
  const horizonMs = nowMs + lookAheadMs;
  const slots = startMs > horizonMs ? 0 : Math.floor((horizonMs - startMs) / intervalMs) + 1;
  return { count: Math.min(slots, capRoom), startMs, intervalMs };
}

/** The room's next slot once a pass has let `admitted` buyers in through `window`. */
export function nextSlotAfter(room: Room, window: AdmissionWindow, admitted: number): number {
  return room.admissionRatePerSecond === null
    ? room.nextSlotMs
    : window.startMs + admitted * window.intervalMs;
}
