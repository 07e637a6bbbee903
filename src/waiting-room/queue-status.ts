/**
 * What a waiting buyer is told, from one read of the place and its room (PlaceView): state, position,
 * people ahead, an estimated wait, and how soon to ask again. Pure: no I/O, the store's clock passed in.
 */
import type { Place, Room } from "../store/waiting-room-store.js";

export type QueueState = "pre-queue" | "waiting" | "admitted" | "session-ended" | "left";

export interface QueueStatus {
  state: QueueState;
  /** 1 = the next to be let in; null in the pre-queue (the order is drawn at the opening). */
  position: number | null;
  /** At most this many buyers are let in before this one (some ahead may have left). */
  peopleAhead: number | null;
  /** Seconds until this buyer is let in, estimated; 0 once admitted. */
  estimatedWaitSeconds: number | null;
  /** When admission starts (ISO 8601). */
  opensAt: string;
  /** When the buyer is (or was) let in (ISO 8601), once known. */
  admitAt: string | null;
  /** When the shopping session ends (ISO 8601), once known. */
  sessionEndsAt: string | null;
  /** Ask again after this many seconds. */
  pollAfterSeconds: number;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());
const clamp = (value: number, low: number, high: number): number => Math.min(high, Math.max(low, value));

/** How soon a buyer expecting to wait `waitSeconds` should ask again: often near the front, rarely far back. */
function pollAfter(waitSeconds: number): number {
  return clamp(Math.ceil(waitSeconds / 5), 1, 30);
}

export function queueStatusOf(room: Room, place: Place, nowMs: number): QueueStatus {
  const base = {
    opensAt: new Date(room.opensAtMs).toISOString(),
    admitAt: iso(place.admitAtMs),
    sessionEndsAt: iso(place.sessionEndsAtMs),
  };
  if (place.leftAtMs !== null) {
    return {
      ...base,
      state: "left",
      position: null,
      peopleAhead: null,
      estimatedWaitSeconds: null,
      pollAfterSeconds: 30,
    };
  }
  if (place.admitAtMs !== null) {
    if (nowMs >= place.admitAtMs) {
      const over = place.sessionEndsAtMs !== null && nowMs >= place.sessionEndsAtMs;
      return {
        ...base,
        state: over ? "session-ended" : "admitted",
        position: null,
        peopleAhead: 0,
        estimatedWaitSeconds: 0,
        pollAfterSeconds: 30,
      };
    }
    // Given an admission time a moment ahead (the pass's look-ahead): next in line.
    const waitSeconds = (place.admitAtMs - nowMs) / 1000;
    return {
      ...base,
      state: "waiting",
      position: 1,
      peopleAhead: 0,
      estimatedWaitSeconds: Math.ceil(waitSeconds),
      pollAfterSeconds: clamp(Math.ceil(waitSeconds), 1, 5),
    };
  }
  if (place.place === null) {
    // The pre-queue: nobody's position exists before the draw. Before the opening, the wait is at least
    // the time until it; just after, the draw is a pass away.
    const untilOpenSeconds = Math.max(0, (room.opensAtMs - nowMs) / 1000);
    return {
      ...base,
      state: nowMs < room.opensAtMs ? "pre-queue" : "waiting",
      position: null,
      peopleAhead: null,
      estimatedWaitSeconds: Math.ceil(untilOpenSeconds),
      pollAfterSeconds: untilOpenSeconds > 0 ? pollAfter(untilOpenSeconds) : 1,
    };
  }
  const peopleAhead = Math.max(0, place.place - room.admittedThrough - 1);
  let waitSeconds: number;
  if (room.admissionRatePerSecond !== null) {
    const firstSlotMs = Math.max(room.nextSlotMs, nowMs, room.opensAtMs);
    waitSeconds = (firstSlotMs - nowMs) / 1000 + peopleAhead / room.admissionRatePerSecond;
  } else {
    // Cap only: a place frees up as a session ends; about one cap's worth of buyers per session length.
    waitSeconds =
      Math.max(0, (room.opensAtMs - nowMs) / 1000) +
      (peopleAhead / (room.maxActiveShoppers ?? 1)) * room.sessionSeconds;
  }
  return {
    ...base,
    state: "waiting",
    position: peopleAhead + 1,
    peopleAhead,
    estimatedWaitSeconds: Math.ceil(waitSeconds),
    pollAfterSeconds: pollAfter(waitSeconds),
  };
}

/** Admitted now, with a session still running: the poll answers with an access token. */
export function isAdmitted(place: Place, nowMs: number): boolean {
  return (
    place.leftAtMs === null &&
    place.admitAtMs !== null &&
    place.sessionEndsAtMs !== null &&
    nowMs >= place.admitAtMs &&
    nowMs < place.sessionEndsAtMs
  );
}
