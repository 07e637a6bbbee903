/**
 * Who the buyer is, for the waiting room: the ONE function that decides it.
 *
 * - A verified buyer (`--buyer-auth jwt`: `request.caller`, set by hooks/buyer-identity.ts on every buyer
 *   route) is their token's `sub`: POST …/queue keys the place by it (one place per verified buyer,
 *   whatever queue tokens they collect), and access tokens are bound to it, so a pass is useless to
 *   anybody else logged in.
 * - Anybody else is the random identity carried in a valid `Queue-Token` for this event, which
 *   POST …/queue made up and signed when they joined: whoever holds the token is that buyer.
 */
import type { FastifyRequest } from "fastify";
import type { PassSigner } from "../waiting-room/pass-signer.js";
import { QUEUE_TOKEN_HEADER } from "./schemas.js";

export function buyerIdentityOf(request: FastifyRequest, eventId: string, signer: PassSigner): string | null {
  // "sub:" keeps a login's identity apart from every random one (those are base64url, without ':').
  if (request.caller?.kind === "buyer") return `sub:${request.caller.customerId}`;
  const header = request.headers[QUEUE_TOKEN_HEADER];
  const pass = signer.readQueue(typeof header === "string" ? header : undefined);
  return pass !== null && pass.eventId === eventId ? pass.identity : null;
}
