/**
 * Group commit for joins: the joins of one event that arrive while the previous batch for that event is
 * being written go together in the next one, one transaction and one durable commit for all of them (as
 * the sell path batches sales). A surge of buyers joining costs a commit per batch, not per buyer; a lone
 * buyer never waits for a batch to fill.
 */
import type { JoinResult, WaitingRoomStore } from "../store/waiting-room-store.js";

/** Joins written in one transaction at most. */
export const MAX_JOIN_BATCH = 500;

interface PendingJoin {
  identity: string;
  resolve: (result: JoinResult) => void;
  reject: (error: unknown) => void;
}

export class JoinBatcher {
  readonly #waitingRoom: WaitingRoomStore;
  readonly #randomRank: () => number;
  readonly #queues = new Map<string, PendingJoin[]>();
  readonly #running = new Set<string>();

  constructor(waitingRoom: WaitingRoomStore, randomRank: () => number) {
    this.#waitingRoom = waitingRoom;
    this.#randomRank = randomRank;
  }

  join(eventId: string, identity: string): Promise<JoinResult> {
    return new Promise((resolve, reject) => {
      let queue = this.#queues.get(eventId);
      if (!queue) this.#queues.set(eventId, (queue = []));
      queue.push({ identity, resolve, reject });
      // After the current I/O phase, so that what arrived with this join goes with it.
      if (!this.#running.has(eventId) && queue.length === 1) setImmediate(() => void this.#flush(eventId));
    });
  }

  async #flush(eventId: string): Promise<void> {
    if (this.#running.has(eventId)) return;
    const queue = this.#queues.get(eventId);
    if (!queue || queue.length === 0) return;
    const batch = queue.splice(0, MAX_JOIN_BATCH);
    if (queue.length === 0) this.#queues.delete(eventId);
    this.#running.add(eventId);
    try {
      const results = await this.#waitingRoom.join(
        eventId,
        batch.map((pending) => pending.identity),
        this.#randomRank,
      );
      batch.forEach((pending, i) => pending.resolve(results[i]!));
    } catch (error) {
      for (const pending of batch) pending.reject(error);
    } finally {
      this.#running.delete(eventId);
      if (this.#queues.has(eventId)) setImmediate(() => void this.#flush(eventId));
    }
  }
}
