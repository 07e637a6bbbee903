/**
 * The door of an event with a waiting room, taken as a real client takes it (the waiting page does the
 * same for a person): join the queue, ask again exactly when the answer says (`pollAfterMs`; after a 503,
 * its `Retry-After`), and once an answer carries the access token, buy when `pollAfterMs` says: a token
 * can come a few seconds before the admission time, and a client that buys at once only waits at the
 * server's gate. The buyer then carries its Queue-Token and Access-Token on every request of the sale.
 *
 * A simulated buyer that ignored `pollAfterMs` (polled at a fixed rate, or bought as soon as it saw a
 * token) would rehearse a different load from the one real buyers make: either many more polls, or
 * purchases bunched at the gate.
 */
import type { Admission, AdmissionGate, Buyer } from "./admission.js";
import type { DoorAnswer } from "./rehearsal-client.js";

/** How the gate asks the door: RehearsalClient.door, or a test's script. */
export type DoorCall = (
  method: "GET" | "POST",
  path: string,
  headers?: Readonly<Record<string, string>>,
) => Promise<DoorAnswer>;

export interface WaitingRoomGateOptions {
  call: DoorCall;
  sleep: (ms: number) => Promise<void>;
  /** A buyer gives up (is turned away) after waiting this long at the door. */
  maxWaitMs: number;
  now?: () => number;
}

/** When an answer says nothing usable about when to come back (no answer, a 503 without Retry-After). */
const FALLBACK_WAIT_MS = 1000;

interface QueueBody {
  state?: string;
  pollAfterMs?: number;
  queueToken?: string;
  accessToken?: string;
  code?: string;
}

const bodyOf = (answer: DoorAnswer): QueueBody =>
  typeof answer.body === "object" && answer.body !== null ? (answer.body as QueueBody) : {};

/** How long to wait before asking again after `answer`: what it said, or a second. */
export function waitAfter(answer: DoorAnswer): number {
  if (answer.status === 200 || answer.status === 201) {
    const pollAfterMs = bodyOf(answer).pollAfterMs;
    return typeof pollAfterMs === "number" && pollAfterMs >= 0 ? pollAfterMs : FALLBACK_WAIT_MS;
  }
  return answer.retryAfterSeconds === null ? FALLBACK_WAIT_MS : answer.retryAfterSeconds * 1000;
}

export class WaitingRoomGate implements AdmissionGate {
  readonly name = "waiting room";
  readonly #options: WaitingRoomGateOptions;

  constructor(options: WaitingRoomGateOptions) {
    this.#options = options;
  }

  async admit(_buyer: Buyer, eventId: string): Promise<Admission | null> {
    const { call, sleep, maxWaitMs } = this.#options;
    const now = this.#options.now ?? Date.now;
    const giveUpAtMs = now() + maxWaitMs;
    const path = `/v1/events/${eventId}/queue`;
    // Joining: a 503 (or no answer) is asked again after its Retry-After; 409 (the pre-queue has not
    // opened) a second later.
    let answer = await call("POST", path);
    while (answer.status !== 200 && answer.status !== 201) {
      if (answer.status !== null && answer.status !== 503 && answer.status !== 409) return null;
      if (now() >= giveUpAtMs) return null;
      await sleep(waitAfter(answer));
      answer = await call("POST", path);
    }
    const queueToken = bodyOf(answer).queueToken;
    if (typeof queueToken !== "string") return null;
    const pass = { "queue-token": queueToken };
    for (;;) {
      const body = bodyOf(answer);
      if (answer.status === 200 || answer.status === 201) {
        if (typeof body.accessToken === "string") {
          // Handed out with the admission time, maybe before it: buy when the answer says.
          if (body.state !== "admitted") await sleep(waitAfter(answer));
          return { headers: { ...pass, "access-token": body.accessToken } };
        }
        if (body.state === "left" || body.state === "session-ended") return null;
      } else if (answer.status !== null && answer.status !== 503) {
        return null; // not_in_queue, the room removed, the token refused
      }
      if (now() >= giveUpAtMs) return null;
      await sleep(waitAfter(answer));
      answer = await call("GET", path, pass);
    }
  }
}

/**
 * The door of each event: a waiting room when the event has one (the queue answers anything but
 * `404 waiting_room_not_found` to a caller without a token), else open.
 */
export async function hasWaitingRoom(call: DoorCall, eventId: string): Promise<boolean> {
  const answer = await call("GET", `/v1/events/${eventId}/queue`);
  return !(answer.status === 404 && bodyOf(answer).code === "waiting_room_not_found");
}
