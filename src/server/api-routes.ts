/**
 * The routes of the v1 API (docs/api.md) for one instance. Request shape is checked here (schemas,
 * ids); every inventory rule is the store's, inside `execute()`, and this layer maps its Outcomes.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { DomainRefusal } from "../domain/errors.js";
import { planEvent } from "../domain/event.js";
import type { NewEventRequest } from "../domain/event.js";
import { eventIdOfHold, eventIdOfOrder, isEventId, newEventId } from "../domain/ids.js";
import { HOLD_TTL_SECONDS } from "../domain/sale.js";
import type { Command, Hold, Order, Outcome, Selection } from "../domain/sale.js";
import type { LockProvider } from "../lock/lock-provider.js";
import type { SellPath } from "../sales/sell-path.js";
import type { Store } from "../store/store.js";
import { InFlightKeys, idempotencyOf } from "./idempotency.js";
import type { Problem } from "./problem.js";
import { problemOf, problemOfRefusal, sendProblem } from "./problem.js";
import type { ResponseSpec, RouteSpec } from "./route-spec.js";
import type { ServerMetrics } from "./server-metrics.js";
import {
  emptyBodySchema,
  eventPageSchema,
  eventSchema,
  healthSchema,
  holdBodySchema,
  holdSchema,
  idParams,
  idempotencyHeadersSchema,
  listEventsQuerySchema,
  newEventBodySchema,
  orderBodySchema,
  orderSchema,
  readySchema,
  seatMapSchema,
} from "./schemas.js";

export interface ApiDeps {
  store: Store;
  lock: LockProvider;
  sellPath: SellPath;
  metrics: ServerMetrics;
  /** Longest a /ready probe waits for the store or the lock. */
  readyTimeoutMs: number;
}

interface SelectionBody {
  customerId: string;
  quantity?: number;
  seats?: string[];
  ttlSeconds?: number;
}

const DEFAULT_PAGE_SIZE = 20;

const problem = (description: string): ResponseSpec => ({ description });
const invalid = problem("invalid_request: the request's shape is wrong");
const tooLarge = problem("payload_too_large: body over 64 KiB");
const unavailable = problem("unavailable: the lock or the store cannot be reached or is too busy; retry");
const sellRefusals: Record<number, ResponseSpec> = {
  404: problem("event_not_found"),
  409: problem(
    "sold_out, seats_unavailable (with `seats`), customer_limit_reached, or idempotency_key_in_use",
  ),
  413: tooLarge,
  415: problem("unsupported_media_type: the body is not application/json"),
  422: problem("invalid_request or idempotency_key_reused"),
  503: unavailable,
};

function selectionOf(body: SelectionBody): Selection {
  return body.seats !== undefined
    ? { quantity: body.seats.length, seats: body.seats }
    : { quantity: body.quantity ?? 0, seats: null };
}

/** A refusal about the event, asked for through a hold or order id, names what the client asked for. */
function refusalFor(refusal: DomainRefusal, missing: "hold_not_found" | "order_not_found"): Problem {
  if (refusal.code === "event_not_found") return problemOf(missing, refusal.detail);
  return problemOfRefusal(refusal);
}

/** A GET of one resource by id: a malformed id and an unknown one are both `missing` (404). */
function readById<T>(
  param: string,
  isWellFormed: (id: string) => boolean,
  read: (id: string) => Promise<T | null>,
  missing: "event_not_found" | "order_not_found" | "hold_not_found",
): RouteSpec["handler"] {
  return async (request, reply) => {
    const id = (request.params as Record<string, string>)[param] ?? "";
    const found = isWellFormed(id) ? await read(id) : null;
    return (
      found ?? sendProblem(reply, problemOf(missing, `no such ${missing.slice(0, -"_not_found".length)}`))
    );
  };
}

export function apiRoutes(deps: ApiDeps): RouteSpec[] {
  const { store, lock, sellPath, metrics } = deps;
  const inFlight = new InFlightKeys();

  /**
   * Sends one command through the batched sell path. Claims the idempotency key in this process first,
   * so that a second copy running here gets 409 at once instead of waiting for the store's replay.
   */
  async function sell(
    reply: FastifyReply,
    eventId: string,
    command: Command,
    idempotencyKey: string | undefined,
  ): Promise<Outcome | null> {
    if (idempotencyKey !== undefined && !inFlight.tryClaim(eventId, idempotencyKey)) {
      sendProblem(
        reply,
        problemOf("idempotency_key_in_use", "a request with this Idempotency-Key is still running"),
      );
      return null;
    }
    try {
      const outcome = await sellPath.submit(eventId, command);
      if (
        !outcome.ok &&
        (outcome.refusal.code === "sold_out" || outcome.refusal.code === "seats_unavailable")
      ) {
        metrics.soldOut.inc();
      }
      return outcome;
    } finally {
      if (idempotencyKey !== undefined) inFlight.release(eventId, idempotencyKey);
    }
  }

  function countSale(outcome: Outcome): void {
    if (outcome.ok && !outcome.replayed && outcome.value) metrics.ticketsSold.inc(outcome.value.quantity);
  }

  async function createSelection(
    request: FastifyRequest,
    reply: FastifyReply,
    type: "purchase" | "hold",
  ): Promise<unknown> {
    const { eventId } = request.params as { eventId: string };
    if (!isEventId(eventId)) return sendProblem(reply, problemOf("event_not_found", "no such event"));
    const body = request.body as SelectionBody;
    const key = (request.headers["idempotency-key"] as string | undefined) ?? undefined;
    const idempotency = idempotencyOf(key, request.method, request.routeOptions.url ?? "", eventId, body);
    const selection = selectionOf(body);
    const command: Command =
      type === "purchase"
        ? { type, customerId: body.customerId, selection, idempotency }
        : {
            type,
            customerId: body.customerId,
            selection,
            ttlSeconds: body.ttlSeconds ?? HOLD_TTL_SECONDS.default,
            idempotency,
          };
    const outcome = await sell(reply, eventId, command, key);
    if (!outcome) return reply;
    if (!outcome.ok) return sendProblem(reply, problemOfRefusal(outcome.refusal));
    if (type === "purchase") countSale(outcome);
    const value = outcome.value as Order | Hold;
    const path = type === "purchase" ? `/v1/orders/${value.id}` : `/v1/holds/${value.id}`;
    return reply.code(201).header("location", path).send(value);
  }

  const routes: RouteSpec[] = [
    {
      method: "POST",
      url: "/v1/events",
      operationId: "createEvent",
      summary: "Create an event: general admission (capacity) or reserved seating (seating)",
      tag: "events",
      admin: true,
      schema: { body: newEventBodySchema },
      responses: {
        201: { description: "The new event; Location names it", schema: eventSchema },
        401: problem("unauthorized"),
        413: tooLarge,
        422: invalid,
        503: unavailable,
      },
      handler: async (request, reply) => {
        const plan = planEvent(request.body as NewEventRequest, newEventId(), new Date());
        const event = await store.createEvent(plan);
        return reply.code(201).header("location", `/v1/events/${event.id}`).send(event);
      },
    },
    {
      method: "GET",
      url: "/v1/events",
      operationId: "listEvents",
      summary: "List events, oldest first, a page at a time",
      tag: "events",
      schema: { querystring: listEventsQuerySchema },
      responses: { 200: { description: "A page of events", schema: eventPageSchema }, 422: invalid },
      handler: async (request) => {
        const query = request.query as { limit?: string; cursor?: string };
        const limit = query.limit === undefined ? DEFAULT_PAGE_SIZE : Number(query.limit);
        return store.listEvents({ limit, cursor: query.cursor ?? null });
      },
    },
    {
      method: "GET",
      url: "/v1/events/:eventId",
      operationId: "getEvent",
      summary: "One event with its counters, read at one instant",
      tag: "events",
      schema: { params: idParams("eventId") },
      responses: { 200: { description: "The event", schema: eventSchema }, 404: problem("event_not_found") },
      handler: readById("eventId", isEventId, (id) => store.getEvent(id), "event_not_found"),
    },
    {
      method: "GET",
      url: "/v1/events/:eventId/seats",
      operationId: "getSeatMap",
      summary: "The seat map of a reserved-seating event (empty sections for general admission)",
      tag: "events",
      schema: { params: idParams("eventId") },
      responses: {
        200: { description: "Every seat and its status", schema: seatMapSchema },
        404: problem("event_not_found"),
      },
      handler: readById("eventId", isEventId, (id) => store.getSeatMap(id), "event_not_found"),
    },
    {
      method: "POST",
      url: "/v1/events/:eventId/orders",
      operationId: "createOrder",
      summary: "Buy tickets: all or nothing, durable before the answer",
      tag: "buying",
      idempotent: true,
      schema: { params: idParams("eventId"), body: orderBodySchema, headers: idempotencyHeadersSchema },
      responses: {
        201: { description: "The confirmed order; Location names it", schema: orderSchema },
        ...sellRefusals,
      },
      handler: (request, reply) => createSelection(request, reply, "purchase"),
    },
    {
      method: "POST",
      url: "/v1/events/:eventId/holds",
      operationId: "createHold",
      summary: "Hold tickets for a while (a cart); they count against availability until they end",
      tag: "holds",
      idempotent: true,
      schema: { params: idParams("eventId"), body: holdBodySchema, headers: idempotencyHeadersSchema },
      responses: {
        201: { description: "The active hold; Location names it", schema: holdSchema },
        ...sellRefusals,
      },
      handler: (request, reply) => createSelection(request, reply, "hold"),
    },
    {
      method: "GET",
      url: "/v1/holds/:holdId",
      operationId: "getHold",
      summary: "One hold",
      tag: "holds",
      schema: { params: idParams("holdId") },
      responses: { 200: { description: "The hold", schema: holdSchema }, 404: problem("hold_not_found") },
      handler: readById(
        "holdId",
        (id) => eventIdOfHold(id) !== null,
        (id) => store.getHold(id),
        "hold_not_found",
      ),
    },
    {
      method: "POST",
      url: "/v1/holds/:holdId/confirm",
      operationId: "confirmHold",
      summary: "Turn an active hold into a confirmed order",
      tag: "holds",
      idempotent: true,
      schema: { params: idParams("holdId"), body: emptyBodySchema, headers: idempotencyHeadersSchema },
      responses: {
        201: { description: "The confirmed order; Location names it", schema: orderSchema },
        404: problem("hold_not_found"),
        409: problem("hold_not_active (already confirmed or released), or idempotency_key_in_use"),
        410: problem("hold_expired"),
        422: problem("invalid_request or idempotency_key_reused"),
        503: unavailable,
      },
      handler: async (request, reply) => {
        const { holdId } = request.params as { holdId: string };
        const eventId = eventIdOfHold(holdId);
        if (!eventId) return sendProblem(reply, problemOf("hold_not_found", "no such hold"));
        const key = request.headers["idempotency-key"] as string | undefined;
        const idempotency = idempotencyOf(key, "POST", request.routeOptions.url ?? "", holdId, request.body);
        const outcome = await sell(reply, eventId, { type: "confirm-hold", holdId, idempotency }, key);
        if (!outcome) return reply;
        if (!outcome.ok) return sendProblem(reply, refusalFor(outcome.refusal, "hold_not_found"));
        countSale(outcome);
        const order = outcome.value as Order;
        return reply.code(201).header("location", `/v1/orders/${order.id}`).send(order);
      },
    },
    {
      method: "DELETE",
      url: "/v1/holds/:holdId",
      operationId: "releaseHold",
      summary: "Release a hold; its tickets go back on sale (a repeat changes nothing)",
      tag: "holds",
      schema: { params: idParams("holdId") },
      responses: { 204: { description: "Released" }, 404: problem("hold_not_found"), 503: unavailable },
      handler: async (request, reply) => {
        const { holdId } = request.params as { holdId: string };
        const eventId = eventIdOfHold(holdId);
        if (!eventId) return sendProblem(reply, problemOf("hold_not_found", "no such hold"));
        const outcome = await sell(reply, eventId, { type: "release-hold", holdId }, undefined);
        if (!outcome) return reply;
        if (!outcome.ok) return sendProblem(reply, refusalFor(outcome.refusal, "hold_not_found"));
        return reply.code(204).send();
      },
    },
    {
      method: "GET",
      url: "/v1/orders/:orderId",
      operationId: "getOrder",
      summary: "One order",
      tag: "orders",
      schema: { params: idParams("orderId") },
      responses: { 200: { description: "The order", schema: orderSchema }, 404: problem("order_not_found") },
      handler: readById(
        "orderId",
        (id) => eventIdOfOrder(id) !== null,
        (id) => store.getOrder(id),
        "order_not_found",
      ),
    },
    {
      method: "POST",
      url: "/v1/orders/:orderId/cancel",
      operationId: "cancelOrder",
      summary: "Cancel an order; its tickets go back on sale exactly once (a repeat answers the same)",
      tag: "orders",
      schema: { params: idParams("orderId"), body: emptyBodySchema },
      responses: {
        200: { description: "The cancelled order", schema: orderSchema },
        404: problem("order_not_found"),
        422: invalid,
        503: unavailable,
      },
      handler: async (request, reply) => {
        const { orderId } = request.params as { orderId: string };
        const eventId = eventIdOfOrder(orderId);
        if (!eventId) return sendProblem(reply, problemOf("order_not_found", "no such order"));
        const outcome = await sell(reply, eventId, { type: "cancel-order", orderId }, undefined);
        if (!outcome) return reply;
        if (!outcome.ok) return sendProblem(reply, refusalFor(outcome.refusal, "order_not_found"));
        return reply.code(200).send(outcome.value);
      },
    },
    {
      method: "GET",
      url: "/health",
      operationId: "health",
      summary: "200 while the process runs",
      tag: "operations",
      schema: {},
      responses: { 200: { description: "Alive", schema: healthSchema } },
      handler: async () => ({ status: "ok" }),
    },
    {
      method: "GET",
      url: "/ready",
      operationId: "ready",
      summary: "200 when the store and the lock service answer, else 503",
      tag: "operations",
      schema: {},
      responses: { 200: { description: "Ready", schema: readySchema }, 503: unavailable },
      handler: async (_request, reply) => {
        const [storeOk, lockOk] = await Promise.all([
          answersWithin(() => store.ping(), deps.readyTimeoutMs),
          answersWithin(() => lock.ping(), deps.readyTimeoutMs),
        ]);
        if (storeOk && lockOk) return { status: "ok", store: "ok", lock: "ok" };
        const down = [storeOk ? null : "store", lockOk ? null : `lock (${lock.kind})`].filter(Boolean);
        return sendProblem(reply, problemOf("unavailable", `not answering: ${down.join(", ")}`));
      },
    },
    {
      method: "GET",
      url: "/metrics",
      operationId: "metrics",
      summary: "Prometheus metrics of this instance",
      tag: "operations",
      schema: {},
      responses: { 200: { description: "Prometheus text format", contentType: "text/plain" } },
      handler: async (_request, reply) => {
        const text = await metrics.registry.metrics();
        return reply.type(metrics.registry.contentType).send(text);
      },
    },
  ];
  return routes;
}

/** True when `probe` resolves within `timeoutMs`; the timer is always cleared. */
async function answersWithin(probe: () => Promise<void>, timeoutMs: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<boolean>((resolve) => {
    timer = setTimeout(() => resolve(false), timeoutMs);
  });
  try {
    return await Promise.race([
      probe().then(
        () => true,
        () => false,
      ),
      timedOut,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
