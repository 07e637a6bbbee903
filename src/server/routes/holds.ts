/**
 * Holds: hold tickets of an event for a while, read a hold, confirm it into an order, release it.
 */
import { eventIdOfHold } from "../../domain/ids.js";
import { HOLD_TTL_SECONDS } from "../../domain/sale.js";
import type { Order } from "../../domain/sale.js";
import type { Store } from "../../store/store.js";
import { idempotencyOf } from "../idempotency.js";
import { problemOf, problemOfRefusalFor, sendProblem } from "../problem.js";
import { problem, sellRefusals, unavailable } from "../problem-responses.js";
import { readById } from "../read-by-id.js";
import type { RouteSpec } from "../route-spec.js";
import {
  emptyBodySchema,
  holdBodySchema,
  holdSchema,
  idParams,
  idempotencyHeadersSchema,
  sellHeadersSchema,
  orderSchema,
} from "../schemas.js";
import type { AccessCheck } from "../hooks/access-token-check.js";
import type { SellGate } from "../sell-gate.js";

export interface HoldRoutes {
  createHold: RouteSpec;
  getHold: RouteSpec;
  confirmHold: RouteSpec;
  releaseHold: RouteSpec;
}

export function holdRoutes(store: Store, gate: SellGate, access: AccessCheck): HoldRoutes {
  return {
    createHold: {
      method: "POST",
      url: "/v1/events/:eventId/holds",
      operationId: "createHold",
      summary: "Hold tickets for a while (a cart); they count against availability until they end",
      tag: "holds",
      idempotent: true,
      schema: { params: idParams("eventId"), body: holdBodySchema, headers: sellHeadersSchema },
      // An event behind a waiting room sells only to admitted buyers.
      preHandler: access,
      responses: {
        201: { description: "The active hold; Location names it", schema: holdSchema },
        ...sellRefusals,
      },
      handler: (request, reply) =>
        gate.takeTickets(
          request,
          reply,
          (body, selection, idempotency) => ({
            type: "hold",
            customerId: body.customerId,
            selection,
            ttlSeconds: body.ttlSeconds ?? HOLD_TTL_SECONDS.default,
            idempotency,
          }),
          "/v1/holds/",
        ),
    },
    getHold: {
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
    confirmHold: {
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
        const outcome = await gate.submit(reply, eventId, { type: "confirm-hold", holdId, idempotency }, key);
        if (!outcome) return reply;
        if (!outcome.ok) return sendProblem(reply, problemOfRefusalFor(outcome.refusal, "hold_not_found"));
        gate.countSale(outcome);
        const order = outcome.value as Order;
        return reply.code(201).header("location", `/v1/orders/${order.id}`).send(order);
      },
    },
    releaseHold: {
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
        const outcome = await gate.submit(reply, eventId, { type: "release-hold", holdId }, undefined);
        if (!outcome) return reply;
        if (!outcome.ok) return sendProblem(reply, problemOfRefusalFor(outcome.refusal, "hold_not_found"));
        return reply.code(204).send();
      },
    },
  };
}
