/**
 * Which events have a waiting room, cached for a second in each instance: every purchase and hold asks,
 * and for an event without a room the answer must cost nothing. A room turned on or off reaches every
 * instance within `ttlMs` (at once on the instance that changed it).
 */
import type { Room, WaitingRoomStore } from "../store/waiting-room-store.js";

const MAX_ENTRIES = 10_000;

export class RoomDirectory {
  readonly #waitingRoom: WaitingRoomStore;
  readonly #ttlMs: number;
  readonly #cache = new Map<string, { room: Room | null; untilMs: number }>();

  constructor(waitingRoom: WaitingRoomStore, ttlMs = 1000) {
    this.#waitingRoom = waitingRoom;
    this.#ttlMs = ttlMs;
  }

  /** The event's room as read at most `ttlMs` ago, or null when it has none. */
  async roomOf(eventId: string): Promise<Room | null> {
    const nowMs = Date.now();
    const cached = this.#cache.get(eventId);
    if (cached && cached.untilMs > nowMs) return cached.room;
    const room = await this.#waitingRoom.room(eventId);
    if (this.#cache.size >= MAX_ENTRIES) this.#cache.clear();
    this.#cache.set(eventId, { room, untilMs: nowMs + this.#ttlMs });
    return room;
  }

  /** Forgets what it knew of the event (after this instance changed its room). */
  forget(eventId: string): void {
    this.#cache.delete(eventId);
  }
}
