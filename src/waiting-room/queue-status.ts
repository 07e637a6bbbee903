/**
 * What a waiting buyer is told, from one read of the place and its room (PlaceView): state, position,
 * people ahead, an estimated wait, and when to ask again. Pure: no I/O, the store's clock and the random
 * source passed in.
 *
 * When to ask again is what keeps the sell path at the admission rate: a buyer whose admission time is
 * known (a pass gives it up to ADMISSION_LOOK_AHEAD_MS ahead) is told to come back exactly then, plus a
 * jitter smaller than the spacing of two slots, so the purchases of admitted buyers arrive spread as the
 * admissions are, not bunched at whole seconds. A buyer further back asks every third of the wait, and
 * at the instant a pass will have given the slot once that is near.
 *
 * The access token is handed out as soon as the admission time is known (hasAccess), valid from that
 * instant: a buyer who holds it needs no poll at the admission time, so a busy server that answers polls
 * late no longer makes the buyer late (the benchmark measured buyers ~1 s late, bunching, when the token
 * came only with a poll at that instant). A purchase sent with it before the admission time waits at the
 * gate until then (server/hooks/access-token-check.ts): early buys no advantage.
 */
import { firstSlotOf, PRE_QUEUE_SPREAD_MS } from "../store/waiting-room-rows.js";
import type { Place, Room } from "../store/waiting-room-store.js";
import { ADMISSION_INTERVAL_MS, ADMISSION_LOOK_AHEAD_MS } from "./admission-ticker.js";

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
  /** Ask again after this many milliseconds (for an admission time known, that instant plus a jitter). */
  pollAfterMs: number;
  /** pollAfterMs in whole seconds, rounded up (for clients that count in seconds, e.g. Retry-After). */
  pollAfterSeconds: number;
}

const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A buyer with nothing to wait for (admitted, session over, left) asks again after this long. */
const IDLE_POLL_MS = 30_000;
/** The longest wait between two polls of a waiting buyer. */
const MAX_POLL_MS = 30_000;
/** Jitter of a poll whose time is a guess: up to this fraction of it (buyers who joined together drift apart). */
const GUESS_JITTER = 0.2;

/** Within this long of the instant a pass will give a buyer its slot, it is told to ask exactly then. */
const SLOT_SOON_MS = 10_000;

/**
 * How soon a buyer expecting to wait `waitMs`, with no admission time yet, should ask again: once its
 * slot will be given within SLOT_SOON_MS (a pass gives it up to the look-ahead before it comes), at that
 * instant, a little early rather than late (the wait is an upper bound when buyers ahead leave); further
 * back, every third of the wait, at most every MAX_POLL_MS. Asking every fifth of the wait, as before,
 * cost the benchmark's waiting buyers twice the admission rate in polls that taught them little.
 */
function pollAfterGuessMs(waitMs: number, random: () => number): number {
  const slotKnownInMs = waitMs - ADMISSION_LOOK_AHEAD_MS + ADMISSION_INTERVAL_MS;
  if (slotKnownInMs <= ADMISSION_INTERVAL_MS) {
    return Math.round(ADMISSION_INTERVAL_MS * (1 + GUESS_JITTER * random()));
  }
  if (slotKnownInMs <= SLOT_SOON_MS) return Math.round(slotKnownInMs * (1 - GUESS_JITTER * random()));
  return Math.round(Math.min(waitMs / 3, MAX_POLL_MS) * (1 + GUESS_JITTER * random()));
}

/**
 * When to ask again, before the opening, for a buyer in the pre-queue: nothing a buyer could learn changes
 * until the draw (there is no position before it), so once just after it (a pass after the opening),
 * spread over a second in an order that has nothing to do with the place; before that only every
 * MAX_POLL_MS while the opening is further away. Asking every second or two, as the first version told
 * buyers to, made the pre-queue of the benchmark (6,000 buyers, 8 s) cost 3,000 polls a second that
 * taught nobody anything and slowed the answers that mattered, after the draw.
 */
function pollAfterOpeningMs(untilOpenMs: number, random: () => number): number {
  if (untilOpenMs <= 0) return Math.round(ADMISSION_INTERVAL_MS * (1 + random()));
  const afterDrawMs = untilOpenMs + ADMISSION_INTERVAL_MS + PRE_QUEUE_SPREAD_MS * random();
  return Math.round(afterDrawMs <= MAX_POLL_MS ? afterDrawMs : MAX_POLL_MS * (1 - GUESS_JITTER * random()));
}

/**
 * The buyer's status. `random` (uniform in [0, 1)) spreads the polls; tests pass a fixed one.
 */
export function queueStatusOf(
  room: Room,
  place: Place,
  nowMs: number,
  random: () => number = Math.random,
): QueueStatus {
  const polls = (pollAfterMs: number) => ({ pollAfterMs, pollAfterSeconds: Math.ceil(pollAfterMs / 1000) });
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
      ...polls(IDLE_POLL_MS),
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
        ...polls(IDLE_POLL_MS),
      };
    }
    // Given an admission time a moment ahead (the pass's look-ahead): next in line, with the access
    // token already (hasAccess), to come back at that instant, a little after it but before the next
    // slot's.
    const waitMs = place.admitAtMs - nowMs;
    const slotMs = room.admissionRatePerSecond === null ? 0 : 1000 / room.admissionRatePerSecond;
    return {
      ...base,
      state: "waiting",
      position: 1,
      peopleAhead: 0,
      estimatedWaitSeconds: Math.ceil(waitMs / 1000),
      ...polls(Math.ceil(waitMs + slotMs * random())),
    };
  }
  if (place.place === null) {
    // The pre-queue: nobody's position exists before the draw. Before the opening, the wait is at least
    // the time until it; just after, the draw is a pass away.
    const untilOpenMs = Math.max(0, room.opensAtMs - nowMs);
    return {
      ...base,
      state: nowMs < room.opensAtMs ? "pre-queue" : "waiting",
      position: null,
      peopleAhead: null,
      estimatedWaitSeconds: Math.ceil(untilOpenMs / 1000),
      ...polls(pollAfterOpeningMs(untilOpenMs, random)),
    };
  }
  const peopleAhead = Math.max(0, place.place - room.admittedThrough - 1);
  let waitSeconds: number;
  if (room.admissionRatePerSecond !== null) {
    const firstSlotMs = Math.max(room.nextSlotMs, nowMs, firstSlotOf(room));
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
    ...polls(pollAfterGuessMs(waitSeconds * 1000, random)),
  };
}

/**
 * The buyer's admission time is known and its session has not ended: the poll answers with the access
 * token (valid from the admission time, see the file's header).
 */
export function hasAccess(place: Place, nowMs: number): boolean {
  return (
    place.leftAtMs === null &&
    place.admitAtMs !== null &&
    place.sessionEndsAtMs !== null &&
    nowMs < place.sessionEndsAtMs
  );
}

/** Admitted now, with a session still running: the access token works now. */
export function isAdmitted(place: Place, nowMs: number): boolean {
  return (
    place.leftAtMs === null &&
    place.admitAtMs !== null &&
    place.sessionEndsAtMs !== null &&
    nowMs >= place.admitAtMs &&
    nowMs < place.sessionEndsAtMs
  );
}
