/**
 * Group commit for joins: the joins of one event that arrive while the previous batch for that event is
 * being written go together in the next one, one transaction and one durable commit for all of them (as
 * the sell path batches sales). A surge of buyers joining costs a commit per batch, not per buyer; a lone
 * buyer never waits for a batch to fill.
 *
 * A batch whose buyers land within the admission look-ahead (the room has free slots in the next few
 * seconds) runs an admission pass at once (`admitNow`, the instance's AdmissionTicker.passNow) and answers
 * them with their admission times, and so their access tokens. Without it, the first buyers of a surge
 * were given times by the next pass and learnt them only from their next poll, which waited behind the
 * rest of the surge's joins on a busy server: the benchmark's first seconds of purchases came 2–4 s late,
 * bunched three times over the rate. With it a buyer learns its time from the answer that gave it.
 */
import { admissionWindow } from "../store/waiting-room-rows.js";
import type { JoinResult, WaitingRoomStore } from "../store/waiting-room-store.js";
import { ADMISSION_LOOK_AHEAD_MS } from "./admission-ticker.js";

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

  readonly #admitNow: (() => Promise<void>) | null;

  constructor(
    waitingRoom: WaitingRoomStore,
    randomRank: () => number,
    admitNow: (() => Promise<void>) | null = null,
  ) {
    this.#waitingRoom = waitingRoom;
    this.#randomRank = randomRank;
    this.#admitNow = admitNow;
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

  /**
   * When some of the joined buyers are within the look-ahead: one admission pass, then their places read
   * again (with their admission times). A pass or a read that fails leaves the answers as they were: the
   * buyers learn their times from their polls.
   */
  async #admittedAtOnce(eventId: string, results: JoinResult[]): Promise<JoinResult[]> {
    const due = (result: JoinResult) => {
      if (!result.ok || result.place.place === null || result.place.admitAtMs !== null) return false;
      const window = admissionWindow(result.room, result.nowMs, ADMISSION_LOOK_AHEAD_MS, 0);
      return result.place.place - result.room.admittedThrough <= window.count;
    };
    if (this.#admitNow === null || !results.some(due)) return results;
    // A pass that fails only delays these buyers' times to their polls (the ticker's own pass reports it).
    await this.#admitNow().catch(() => undefined);
    return Promise.all(
      results.map(async (result) => {
        if (!result.ok || !due(result)) return result;
        const view = await this.#waitingRoom.place(eventId, result.place.identity).catch(() => null);
        return view?.place ? { ...result, place: view.place, room: view.room, nowMs: view.nowMs } : result;
      }),
    );
  }

  async #flush(eventId: string): Promise<void> {
    if (this.#running.has(eventId)) return;
    const queue = this.#queues.get(eventId);
    if (!queue || queue.length === 0) return;
    const batch = queue.splice(0, MAX_JOIN_BATCH);
    if (queue.length === 0) this.#queues.delete(eventId);
    this.#running.add(eventId);
    try {
      const results = await this.#admittedAtOnce(
        eventId,
        await this.#waitingRoom.join(
          eventId,
          batch.map((pending) => pending.identity),
          this.#randomRank,
        ),
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
