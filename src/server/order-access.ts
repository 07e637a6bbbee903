/**
 * Who may read, cancel, confirm, release or extend an order or a hold: whoever holds its access secret,
 * the buyer whose verified token's `sub` owns it, or the admin. Anybody else gets the same 404 as for an
 * id that does not exist, so an order id learned somewhere (a log, a shoulder) tells nothing and opens
 * nothing.
 *
 * The secret is derived, not stored: base64url HMAC-SHA256 of the id under the signing secret's
 * "order-access" key (config/signing-secret.ts), so every instance can check it, an idempotent replay can
 * answer it again, and nothing new is written on the sell path. It travels in `X-Order-Secret`, or in
 * `?secret=` for a link (which ends up in browser history and access logs: docs/api.md).
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { deriveKey } from "../config/signing-secret.js";
import { eventIdOfHold, eventIdOfOrder } from "../domain/ids.js";
import type { Hold, Order } from "../domain/sale.js";
import type { Store } from "../store/store.js";
import { problemOf, sendProblem } from "./problem.js";
import type { JsonSchema } from "./schemas.js";

export const ORDER_SECRET_HEADER = "x-order-secret";
/** base64url of 32 bytes. */
const SECRET_LENGTH = 43;

declare module "fastify" {
  interface FastifyRequest {
    /** What an access check read to decide (the owner's order or hold), so a handler need not read it again. */
    accessed: Order | Hold | null;
  }
}

/** A route's preHandler that lets only those with access through; answers 404 to everybody else. */
export type AccessCheck = (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply | undefined>;

/** The query string of a route behind an AccessCheck: the secret, for links. */
export const accessQuerySchema: JsonSchema = {
  type: "object",
  properties: {
    secret: {
      type: "string",
      maxLength: 100,
      description: "the order's or hold's access secret, for a link; prefer the X-Order-Secret header",
    },
  },
};

export class OrderAccess {
  readonly #key: Buffer;
  readonly #store: Store;

  constructor(store: Store, signingSecret: string) {
    this.#store = store;
    this.#key = deriveKey(signingSecret, "order-access");
  }

  /** The access secret of an order or hold id. */
  secretOf(id: string): string {
    return createHmac("sha256", this.#key).update(id).digest("base64url");
  }

  /** True when `given` is the id's secret, compared in constant time. */
  matches(id: string, given: unknown): boolean {
    if (typeof given !== "string" || given.length !== SECRET_LENGTH) return false;
    return timingSafeEqual(Buffer.from(this.secretOf(id)), Buffer.from(given));
  }

  /** The preHandler of routes with an :orderId. */
  readonly toOrder: AccessCheck = (request, reply) =>
    this.#check(
      request,
      reply,
      "orderId",
      eventIdOfOrder,
      (id) => this.#store.getOrder(id),
      "order_not_found",
    );

  /** The preHandler of routes with a :holdId (read, confirm, release, extend). */
  readonly toHold: AccessCheck = (request, reply) =>
    this.#check(request, reply, "holdId", eventIdOfHold, (id) => this.#store.getHold(id), "hold_not_found");

  async #check(
    request: FastifyRequest,
    reply: FastifyReply,
    param: string,
    eventIdOf: (id: string) => string | null,
    read: (id: string) => Promise<Order | Hold | null>,
    missing: "order_not_found" | "hold_not_found",
  ): Promise<FastifyReply | undefined> {
    request.accessed = null;
    const id = (request.params as Record<string, string>)[param] ?? "";
    if (eventIdOf(id) === null)
      return sendProblem(reply, problemOf(missing, `no such ${missing.split("_")[0]}`));
    const caller = request.caller;
    if (caller?.kind === "admin") return undefined;
    const given =
      request.headers[ORDER_SECRET_HEADER] ?? (request.query as { secret?: unknown } | undefined)?.secret;
    if (given !== undefined && this.matches(id, given)) return undefined;
    if (caller?.kind === "buyer") {
      const found = await read(id);
      if (found !== null && found.customerId === caller.customerId) {
        request.accessed = found;
        return undefined;
      }
    }
    return sendProblem(reply, problemOf(missing, `no such ${missing.split("_")[0]}`));
  }
}
