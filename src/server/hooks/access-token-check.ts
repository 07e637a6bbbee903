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
import { ACCESS_TOKEN_HEADER } from "../schemas.js";

export interface AccessCheckDeps {
  waitingRoom: WaitingRoomStore;
  directory: RoomDirectory;
  signer: PassSigner;
}

export type AccessCheck = (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;

export function accessTokenCheck(deps: AccessCheckDeps): AccessCheck {
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
    const view = await deps.waitingRoom.place(eventId, identity);
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
    const place = view?.place;
    if (
      !view ||
      !place ||
      view.room.generation !== pass.generation ||
      place.place !== pass.place ||
      place.leftAtMs !== null ||
      place.sessionEndsAtMs !== pass.expiresAtMs ||
      place.admitAtMs === null ||
      nowMs < place.admitAtMs
    ) {
      return invalid(
        "the Access-Token's session is over (the buyer left or joined again, or the room was reset)",
      );
    }
  };
}
