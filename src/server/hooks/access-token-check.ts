/**
 * The waiting room's gate on the sell path: a preHandler on the routes that take tickets (orders and
 * holds). For an event with a room, the request must carry an `Access-Token` that this cluster signed for
 * this event and this buyer (buyer-identity.ts), whose session has not ended:
 *
 * - no token: 403 access_token_required;
 * - forged or malformed, for another event, for another buyer: 403 access_token_invalid;
 * - past the end of its session: 403 access_token_expired;
 * - replayed: a token whose session the store no longer holds — the buyer left the room (DELETE
 *   …/queue), joined again (a new place), or the room was removed and set up again (a new generation) —
 *   is refused with access_token_invalid even before its own expiry.
 *
 * - early: the token is handed out as soon as the buyer's admission time is known, a few seconds before
 *   it (waiting-room/queue-status.ts); a request that carries it before that instant waits here until
 *   then (at most MAX_EARLY_WAIT_MS; then the place is read again), and only then goes on to the sell
 *   path. Sending early buys nothing, and the sell path sees each buyer no sooner than the rate allows,
 *   whatever the client does. A token further ahead than that is refused as not yet valid. Only one
 *   request per buyer and event waits at a time on an instance: a second one sent meanwhile is refused at
 *   once, so a buyer (or a bot holding one early token) cannot tie up the instance's connections, and the
 *   balancer's slots for it, with requests parked here.
 *
 * An event without a room costs a cached lookup (waiting-room/room-directory.ts); one with a room, the
 * signature check and one indexed read of the buyer's place. The sell path behind it is unchanged.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { isEventId } from "../../domain/ids.js";
import type { WaitingRoomStore } from "../../store/waiting-room-store.js";
import type { PassSigner } from "../../waiting-room/pass-signer.js";
import type { RoomDirectory } from "../../waiting-room/room-directory.js";
import { buyerIdentityOf } from "../buyer-identity.js";
import { problemOf, sendProblem } from "../problem.js";
import { ADMISSION_LOOK_AHEAD_MS } from "../../waiting-room/admission-ticker.js";
import { ACCESS_TOKEN_HEADER } from "../schemas.js";

/**
 * The longest a request sent before its admission time waits at the gate: the look-ahead (how far ahead
 * a token can be handed out) and a second of slack for a pass that ran a little ahead of the poll.
 */
export const MAX_EARLY_WAIT_MS = ADMISSION_LOOK_AHEAD_MS + 1000;

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface AccessCheckDeps {
  waitingRoom: WaitingRoomStore;
  directory: RoomDirectory;
  signer: PassSigner;
}

export type AccessCheck = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

export function accessTokenCheck(deps: AccessCheckDeps): AccessCheck {
  /** The buyers (event and identity) with a request waiting here for its admission time. */
  const waitingEarly = new Set<string>();
  return async (request, reply) => {
    const { eventId } = request.params as { eventId: string };
    // An id that is no event's goes on to the handler, which answers event_not_found.
    if (!isEventId(eventId)) return;
    const room = await deps.directory.roomOf(eventId);
    if (!room) return;
    const header = request.headers[ACCESS_TOKEN_HEADER];
    if (header === undefined) {
      return sendProblem(
        reply,
        problemOf(
          "access_token_required",
          `this event has a waiting room: join it (POST /v1/events/${eventId}/queue) and send the Access-Token it gives you`,
        ),
      );
    }
    const invalid = (detail: string) => sendProblem(reply, problemOf("access_token_invalid", detail));
    const pass = deps.signer.readAccess(typeof header === "string" ? header : undefined);
    if (!pass) return invalid("the Access-Token is not one this service issued");
    if (pass.eventId !== eventId) return invalid("the Access-Token was issued for another event");
    const identity = buyerIdentityOf(request, eventId, deps.signer);
    if (identity === null) {
      return invalid("send the Queue-Token the Access-Token was issued with (who you are)");
    }
    if (pass.identity !== identity) return invalid("the Access-Token was issued to another buyer");
    let view = await deps.waitingRoom.place(eventId, identity);
    /** The place is still the one the pass was issued for (not left, not joined again, not reset). */
    const holds = (seen: typeof view) =>
      !!seen?.place &&
      seen.room.generation === pass.generation &&
      seen.place.place === pass.place &&
      seen.place.leftAtMs === null &&
      seen.place.sessionEndsAtMs === pass.expiresAtMs &&
      seen.place.admitAtMs !== null;
    const earlyMsOf = (seen: typeof view) =>
      seen?.place?.admitAtMs == null ? 0 : seen.place.admitAtMs - seen.nowMs;
    if (holds(view)) {
      if (earlyMsOf(view) > MAX_EARLY_WAIT_MS) {
        return invalid(`the Access-Token is valid from ${new Date(pass.admitAtMs).toISOString()}`);
      }
      // Sent before its admission time: it waits for it, then the place is read again (the buyer may
      // have left meanwhile), on the store's clock; a timer that fired a millisecond early waits again.
      if (earlyMsOf(view) > 0) {
        const waiter = `${eventId}\n${identity}`;
        if (waitingEarly.has(waiter)) {
          return invalid(
            `the Access-Token is valid from ${new Date(pass.admitAtMs).toISOString()}, and a request with it is already waiting for that time; send again from then`,
          );
        }
        waitingEarly.add(waiter);
        try {
          for (let tries = 0; tries < 3 && earlyMsOf(view) > 0; tries++) {
            await sleep(earlyMsOf(view));
            view = await deps.waitingRoom.place(eventId, identity);
          }
        } finally {
          waitingEarly.delete(waiter);
        }
      }
    }
    const nowMs = view?.nowMs ?? Date.now();
    if (nowMs >= pass.expiresAtMs) {
      return sendProblem(
        reply,
        problemOf(
          "access_token_expired",
          "the shopping session of this Access-Token has ended; join the queue again",
        ),
      );
    }
    if (!holds(view) || nowMs < (view?.place?.admitAtMs ?? Infinity)) {
      return invalid(
        "the Access-Token's session is over (the buyer left or joined again, or the room was reset)",
      );
    }
  };
}
