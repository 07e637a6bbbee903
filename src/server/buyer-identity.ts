/**
 * Who the buyer is, for the waiting room: the ONE function that decides it.
 *
 * Today (no buyer authentication): the random identity carried in a valid `Queue-Token` for this event,
 * which POST …/queue made up and signed when the buyer joined. Whoever holds the token is that buyer.
 *
 * MERGE NOTE (issue 13, branch h13-access, `--buyer-auth jwt`): with buyer JWTs the identity is the
 * verified token's `sub` instead (Authorization: Bearer <JWT>); return it here, and nothing else changes:
 * POST …/queue then keys the place by `sub` (one place per verified buyer), and access tokens are bound to
 * `sub`, so a pass is useless to anyone else logged in.
 */
import type { FastifyRequest } from "fastify";
import type { PassSigner } from "../waiting-room/pass-signer.js";
import { QUEUE_TOKEN_HEADER } from "./schemas.js";

export function buyerIdentityOf(request: FastifyRequest, eventId: string, signer: PassSigner): string | null {
  const header = request.headers[QUEUE_TOKEN_HEADER];
  const pass = signer.readQueue(typeof header === "string" ? header : undefined);
  return pass !== null && pass.eventId === eventId ? pass.identity : null;
}
