/**
 * Which events have a waiting room, cached in each instance: every purchase and hold asks, and for an
 * event without a room the answer must cost nothing. What the cache may cost is bounded:
 *
 * - A room turned on before the event's sale opens gates every purchase of the sale, on every instance:
 *   "no room" is never trusted across the sale's opening (it is kept until `ttlMs` before
 *   `salesStartAt` at most, so that clocks up to `ttlMs` apart still agree), and never kept for an event
 *   whose sale may open at any moment by an admin's action (a draft, a paused or closed sale). The one
 *   gap: an edit that moves `salesStartAt` to less than `ttlMs` from now opens the sale before the other
 *   instances look again; they do within `ttlMs`.
 * - A room turned on while the sale is open is in force on the instance that turned it on at once, and
 *   on every other instance within `ttlMs`.
 * - A room turned off: orders need no token on every instance within `ttlMs`.
 */
import type { SaleState } from "../domain/sale-window.js";
import type { Room, WaitingRoomStore } from "../store/waiting-room-store.js";

const MAX_ENTRIES = 10_000;

/** The default time a room's presence or absence is trusted. */
export const ROOM_CACHE_MS = 1000;

/** What the directory needs of an event: its sale's state and start. */
export interface SaleOf {
  (eventId: string): Promise<{ state: SaleState; salesStartAt: string | null } | null>;
}

export class RoomDirectory {
  readonly #waitingRoom: WaitingRoomStore;
  readonly #saleOf: SaleOf;
  readonly #ttlMs: number;
  readonly #cache = new Map<string, { room: Room | null; untilMs: number }>();

  constructor(waitingRoom: WaitingRoomStore, saleOf: SaleOf, ttlMs = ROOM_CACHE_MS) {
    this.#waitingRoom = waitingRoom;
    this.#saleOf = saleOf;
    this.#ttlMs = ttlMs;
  }

  /** The event's room as read at most `ttlMs` ago (never across its sale's opening), or null. */
  async roomOf(eventId: string): Promise<Room | null> {
    const nowMs = Date.now();
    const cached = this.#cache.get(eventId);
    if (cached && cached.untilMs > nowMs) return cached.room;
    const room = await this.#waitingRoom.room(eventId);
    const untilMs = room ? nowMs + this.#ttlMs : await this.#noRoomUntilMs(eventId, nowMs);
    if (untilMs > nowMs) {
      if (this.#cache.size >= MAX_ENTRIES) this.#cache.clear();
      this.#cache.set(eventId, { room, untilMs });
    } else {
      this.#cache.delete(eventId);
    }
    return room;
  }

  /** Until when "this event has no room" may be believed without asking the store again. */
  async #noRoomUntilMs(eventId: string, nowMs: number): Promise<number> {
    const sale = await this.#saleOf(eventId);
    // No such event: the handler answers event_not_found; an event created later has no room either.
    if (!sale) return nowMs + this.#ttlMs;
    switch (sale.state) {
      case "draft":
      case "paused":
      case "closed":
        // An admin's publish, resume or edit opens the sale at a moment nobody can foresee: ask every
        // time (such a purchase is refused anyway, sale_not_open, after a read of the event).
        return nowMs;
      case "scheduled": {
        const startMs = sale.salesStartAt === null ? nowMs : Date.parse(sale.salesStartAt);
        return Math.min(nowMs + this.#ttlMs, startMs - this.#ttlMs);
      }
      case "on_sale":
        return nowMs + this.#ttlMs;
    }
  }

  /** Forgets what it knew of the event (after this instance changed its room). */
  forget(eventId: string): void {
    this.#cache.delete(eventId);
  }
}
