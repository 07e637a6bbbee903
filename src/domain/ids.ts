/**
 * Ids are opaque to clients, but not to us: an order or hold id carries the id of its event, so that any
 * instance can route a request for it to the event's partition (its own file, in the per-event layout)
 * without a lookup in a shared table.
 *
 *   event  evt_<ulid>                    e.g. evt_01JDZ4K8Q0ABCDEFGHJKMNPQRS
 *   order  ord_<event ulid>_<ulid>
 *   hold   hld_<event ulid>_<ulid>
 *
 * A ULID here is 10 Crockford base32 characters of milliseconds and 16 of randomness, so ids sort by
 * creation time (which the event list's cursor relies on).
 */
import { randomBytes } from "node:crypto";

const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const ULID = "[0-9A-HJKMNP-TV-Z]{26}";
const EVENT_ID = new RegExp(`^evt_(${ULID})$`);
const CHILD_ID = new RegExp(`^(ord|hld)_(${ULID})_(${ULID})$`);

let lastTimeMs = -1;
let lastRandom: number[] = [];

/**
 * A new ULID for the given time. Within one process, ids made in the same millisecond still sort in
 * the order they were made: the random part of the previous one is incremented instead of redrawn.
 */
export function ulid(nowMs: number = Date.now()): string {
  let time = "";
  let ms = nowMs;
  for (let i = 0; i < 10; i++) {
    time = CROCKFORD[ms % 32] + time;
    ms = Math.floor(ms / 32);
  }
  if (nowMs === lastTimeMs) {
    let i = lastRandom.length - 1;
    while (i >= 0 && lastRandom[i] === 31) lastRandom[i--] = 0;
    if (i >= 0) lastRandom[i] = (lastRandom[i] ?? 0) + 1;
  } else {
    lastTimeMs = nowMs;
    lastRandom = [...randomBytes(16)].map((byte) => byte % 32);
    lastRandom[0] = (lastRandom[0] ?? 0) % 16; // headroom so increments rarely wrap
  }
  return time + lastRandom.map((digit) => CROCKFORD[digit]).join("");
}

export function newEventId(nowMs?: number): string {
  return `evt_${ulid(nowMs)}`;
}

export function newOrderId(eventId: string, nowMs?: number): string {
  return `ord_${eventUlid(eventId)}_${ulid(nowMs)}`;
}

export function newHoldId(eventId: string, nowMs?: number): string {
  return `hld_${eventUlid(eventId)}_${ulid(nowMs)}`;
}

export function isEventId(id: string): boolean {
  return EVENT_ID.test(id);
}

function eventUlid(eventId: string): string {
  const match = EVENT_ID.exec(eventId);
  if (!match?.[1]) throw new TypeError(`not an event id: ${eventId}`);
  return match[1];
}

/** The event an order id belongs to, or null when the string is not an order id. */
export function eventIdOfOrder(orderId: string): string | null {
  const match = CHILD_ID.exec(orderId);
  return match?.[1] === "ord" ? `evt_${match[2]}` : null;
}

/**
 * The bounds of an event's order ids in byte order: every one is above `after` and below `before`
 * (`ord_<event ulid>_…`; a backquote is the character after the underscore), so that its orders are one
 * range of the orders' primary key.
 */
export function orderIdRange(eventId: string): { after: string; before: string } {
  const ulid = eventUlid(eventId);
  return { after: `ord_${ulid}_`, before: `ord_${ulid}\`` };
}

/** The event a hold id belongs to, or null when the string is not a hold id. */
export function eventIdOfHold(holdId: string): string | null {
  const match = CHILD_ID.exec(holdId);
  return match?.[1] === "hld" ? `evt_${match[2]}` : null;
}
