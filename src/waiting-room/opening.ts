/**
 * When a room opens: the ONE function that decides a room's opening (when admission starts) and when its
 * pre-queue opens, from what the admin sent.
 *
 * MERGE NOTE (issue 13, branch h13-sale): events gain `salesStartAt`. The merger makes `opensAt` default
 * to the event's `salesStartAt` here (pass the event in, and use `event.salesStartAt` where this uses the
 * time of the request), so that a room opens with the sale unless the admin says otherwise. Until then an
 * absent `opensAt` means "now": the room admits from the moment it is set up.
 */

export interface RequestedOpening {
  /** ISO 8601; absent: now (with issue 13: the event's salesStartAt). */
  opensAt?: string | undefined;
  /** ISO 8601; absent: now, or the opening if that is earlier. */
  preQueueOpensAt?: string | undefined;
}

export type Opening =
  { ok: true; opensAtMs: number; preQueueOpensAtMs: number } | { ok: false; detail: string };

export function openingOf(requested: RequestedOpening, nowMs: number): Opening {
  const opensAtMs = requested.opensAt === undefined ? nowMs : Date.parse(requested.opensAt);
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
