/**
 * Which admitted buyers collected their access tokens, written a batch at a time: the figure of
 * abandonment needs to know it, but not at once, and a write per admitted buyer's poll would put a
 * durable commit per buyer on the store that the sell path shares (on SQLite, the catalog that its
 * outbox hints use). Marks wait at most `flushAfterMs`; a mark lost with a crashed instance makes one
 * buyer count as abandoned, nothing else.
 */
import type { CollectedMark, WaitingRoomStore } from "../store/waiting-room-store.js";

/** Marks written at once at most; more start the next write. */
const MAX_MARKS = 5000;

export class CollectionLog {
  readonly #waitingRoom: WaitingRoomStore;
  readonly #flushAfterMs: number;
  readonly #onError: (error: unknown) => void;
  #pending = new Map<string, CollectedMark>();
  #timer: NodeJS.Timeout | null = null;
  #writing: Promise<void> = Promise.resolve();

  constructor(waitingRoom: WaitingRoomStore, flushAfterMs: number, onError: (error: unknown) => void) {
    this.#waitingRoom = waitingRoom;
    this.#flushAfterMs = flushAfterMs;
    this.#onError = onError;
  }

  /** Notes that the buyer was handed the access token; written within `flushAfterMs`. */
  note(mark: CollectedMark): void {
    const key = `${mark.eventId}\n${mark.identity}`;
    if (!this.#pending.has(key)) this.#pending.set(key, mark);
    if (this.#pending.size >= MAX_MARKS) void this.flush();
    else if (!this.#timer) {
      this.#timer = setTimeout(() => void this.flush(), this.#flushAfterMs);
      this.#timer.unref();
    }
  }

  /** Writes what was noted so far (after any write under way); resolves when it is written or failed. */
  flush(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    const marks = [...this.#pending.values()];
    this.#pending = new Map();
    if (marks.length === 0) return this.#writing;
    this.#writing = this.#writing.then(() =>
      this.#waitingRoom.markCollected(marks).catch((error: unknown) => this.#onError(error)),
    );
    return this.#writing;
  }

  /** Writes what is pending; idempotent. */
  close(): Promise<void> {
    return this.flush();
  }
}
