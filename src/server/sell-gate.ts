/**
 * The routes' one way into the batched sell path, and the request bodies that name tickets.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import { isEventId } from "../domain/ids.js";
import type { ItemRequest } from "../domain/pricing.js";
import type { Command, Hold, Idempotency, Order, Outcome, Selection } from "../domain/sale.js";
import type { SellPath } from "../sales/sell-path.js";
import { InFlightKeys, idempotencyOf, scopedKey } from "./idempotency.js";
import type { OrderAccess } from "./order-access.js";
import { problemOf, problemOfRefusal, sendProblem } from "./problem.js";
import { sellTraceOf } from "./request-trace.js";
import type { ServerMetrics } from "./server-metrics.js";

/**
 * The body of an order or a hold: a quantity (of the event's only ticket type), items by ticket type,
 * or named seats (the schema allows exactly one). Never a price: the schema refuses any other field.
 * customerId may be left out when a verified buyer's token names the customer.
 */
export interface SelectionBody {
  customerId?: string;
  quantity?: number;
  items?: ItemRequest[];
  seats?: string[];
  ttlSeconds?: number;
}

export function selectionOf(body: SelectionBody): Selection {
  if (body.seats !== undefined) return { quantity: body.seats.length, seats: body.seats };
  if (body.items !== undefined) {
    const items = body.items.map((item) => ({ ticketTypeId: item.ticketTypeId, quantity: item.quantity }));
    return { quantity: items.reduce((sum, item) => sum + item.quantity, 0), seats: null, items };
  }
  return { quantity: body.quantity ?? 0, seats: null, items: null };
}

/**
 * Sends commands through the sell path. Claims the idempotency key in this process first, so that a
 * second copy running here gets 409 at once instead of waiting for the store's replay, and counts
 * refusals for want of tickets and tickets sold.
 */
export class SellGate {
  readonly #sellPath: SellPath;
  readonly #metrics: ServerMetrics;
  readonly #inFlight = new InFlightKeys();
  readonly #access: OrderAccess;
  readonly #buyerTokensRequired: boolean;

  /**
   * @param buyerTokensRequired --buyer-auth jwt: taking tickets needs a buyer token (or the admin token,
   *   acting for the body's customerId).
   */
  constructor(sellPath: SellPath, metrics: ServerMetrics, access: OrderAccess, buyerTokensRequired: boolean) {
    this.#sellPath = sellPath;
    this.#metrics = metrics;
    this.#access = access;
    this.#buyerTokensRequired = buyerTokensRequired;
  }

  /** An order or a hold as its creator gets it: with its access secret (derived again for a replay). */
  withSecret<T extends Order | Hold>(taken: T): T & { secret: string } {
    return { ...taken, secret: this.#access.secretOf(taken.id) };
  }

  /** The command's Outcome; null when its key is still running here (the 409 is then sent). */
  async submit(
    reply: FastifyReply,
    eventId: string,
    command: Command,
    idempotencyKey: string | undefined,
  ): Promise<Outcome | null> {
    if (idempotencyKey !== undefined && !this.#inFlight.tryClaim(eventId, idempotencyKey)) {
      sendProblem(
        reply,
        problemOf("idempotency_key_in_use", "a request with this Idempotency-Key is still running"),
      );
      return null;
    }
    try {
      const outcome = await this.#sellPath.submit(eventId, command, sellTraceOf(reply.request));
      if (
        !outcome.ok &&
        (outcome.refusal.code === "sold_out" || outcome.refusal.code === "seats_unavailable")
      ) {
        this.#metrics.soldOut.inc();
      }
      return outcome;
    } finally {
      if (idempotencyKey !== undefined) this.#inFlight.release(eventId, idempotencyKey);
    }
  }

  /**
   * The handler of a route that takes tickets of `/v1/events/:eventId/…` (an order or a hold): the
   * request's selection and Idempotency-Key made into the command `commandOf` builds, submitted, and
   * answered 201 with a Location under `locationBase`, or with the refusal.
   */
  async takeTickets(
    request: FastifyRequest,
    reply: FastifyReply,
    commandOf: (
      customerId: string,
      body: SelectionBody,
      selection: Selection,
      idempotency: Idempotency | null,
    ) => Command,
    locationBase: "/v1/orders/" | "/v1/holds/",
  ): Promise<FastifyReply> {
    const { eventId } = request.params as { eventId: string };
    if (!isEventId(eventId)) return sendProblem(reply, problemOf("event_not_found", "no such event"));
    const body = request.body as SelectionBody;
    const customerId = this.#customerOf(request, reply, body);
    if (customerId === null) return reply;
    const rawKey = (request.headers["idempotency-key"] as string | undefined) ?? undefined;
    // The key is the customer's: another buyer sending the same key is another key (idempotency.ts).
    const key = rawKey === undefined ? undefined : scopedKey(customerId, rawKey);
    const idempotency = idempotencyOf(key, request.method, request.routeOptions.url ?? "", eventId, body);
    const command = commandOf(customerId, body, selectionOf(body), idempotency);
    const outcome = await this.submit(reply, eventId, command, key);
    if (!outcome) return reply;
    if (!outcome.ok) return sendProblem(reply, problemOfRefusal(outcome.refusal));
    this.countSale(outcome);
    const taken = outcome.value as Order | Hold;
    return reply.code(201).header("location", `${locationBase}${taken.id}`).send(this.withSecret(taken));
  }

  /**
   * The customer a purchase or hold is for: a verified buyer's `sub` (a body customerId must then be the
   * same), else the body's customerId (the admin's, or anybody's without verified buyers). Null when the
   * refusal is sent.
   */
  #customerOf(request: FastifyRequest, reply: FastifyReply, body: SelectionBody): string | null {
    const caller = request.caller ?? { kind: "anonymous" };
    if (caller.kind === "buyer") {
      if (body.customerId !== undefined && body.customerId !== caller.customerId) {
        sendProblem(
          reply,
          problemOf("customer_mismatch", "customerId differs from your buyer token's customer; leave it out"),
        );
        return null;
      }
      return caller.customerId;
    }
    if (caller.kind === "anonymous" && this.#buyerTokensRequired) {
      sendProblem(reply, problemOf("unauthorized", "send Authorization: Bearer <buyer token>"));
      return null;
    }
    if (body.customerId === undefined) {
      sendProblem(reply, problemOf("invalid_request", "body must have required property 'customerId'"));
      return null;
    }
    return body.customerId;
  }

  /** Counts the tickets of a sale made now (a replayed answer sold nothing new; a hold sold nothing). */
  countSale(outcome: Outcome): void {
    const value = outcome.ok && !outcome.replayed ? outcome.value : null;
    if (value && !("expiresAt" in value)) this.#metrics.ticketsSold.inc(value.quantity);
  }
}
