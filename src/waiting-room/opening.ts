/**
 * When a room opens: the ONE function that decides a room's opening (when admission starts) and when its
 * pre-queue opens, from what the admin sent and the event's sale window: an absent `opensAt` is the
 * event's `salesStartAt`, so that a room opens with the sale, or now when the event has no start (or it
 * has passed).
 */

export interface RequestedOpening {
  /** ISO 8601; absent: the event's salesStartAt, or now. */
  opensAt?: string | undefined;
  /** ISO 8601; absent: now, or the opening if that is earlier. */
  preQueueOpensAt?: string | undefined;
}

export type Opening =
  { ok: true; opensAtMs: number; preQueueOpensAtMs: number } | { ok: false; detail: string };

export function openingOf(requested: RequestedOpening, salesStartAt: string | null, nowMs: number): Opening {
  const saleStartMs = salesStartAt === null ? nowMs : Math.max(nowMs, Date.parse(salesStartAt));
  const opensAtMs = requested.opensAt === undefined ? saleStartMs : Date.parse(requested.opensAt);
  if (!Number.isFinite(opensAtMs)) return { ok: false, detail: "opensAt is not a date-time" };
  const preQueueOpensAtMs =
    requested.preQueueOpensAt === undefined
      ? Math.min(nowMs, opensAtMs)
      : Date.parse(requested.preQueueOpensAt);
  if (!Number.isFinite(preQueueOpensAtMs)) return { ok: false, detail: "preQueueOpensAt is not a date-time" };
  if (preQueueOpensAtMs > opensAtMs)
    return { ok: false, detail: "preQueueOpensAt must not be after opensAt" };
  return { ok: true, opensAtMs, preQueueOpensAtMs };
}
