/**
 * Holds: hold tickets of an event for a while, read a hold, confirm it into an order, release it. All but
 * the creation need the hold's secret, its owner's buyer token or the admin token (order-access.ts).
 */
import { eventIdOfHold } from "../../domain/ids.js";
import { HOLD_TTL_SECONDS } from "../../domain/sale.js";
import type { Hold, Order } from "../../domain/sale.js";
import type { Store } from "../../store/store.js";
import { idempotencyOf, scopedKey } from "../idempotency.js";
import type { OrderAccess } from "../order-access.js";
import { accessQuerySchema } from "../order-access.js";
import { problemOf, problemOfRefusalFor, sendProblem } from "../problem.js";
import { invalid, problem, sellRefusals, unavailable } from "../problem-responses.js";
import type { RouteSpec } from "../route-spec.js";
import {
  confirmBodySchema,
  extendBodySchema,
  holdBodySchema,
  holdSchema,
  idParams,
  idempotencyHeadersSchema,
  newHoldSchema,
  newOrderSchema,
  sellHeadersSchema,
} from "../schemas.js";
import type { AccessCheck } from "../hooks/access-token-check.js";
import type { SellGate } from "../sell-gate.js";

export interface HoldRoutes {
  createHold: RouteSpec;
  getHold: RouteSpec;
  confirmHold: RouteSpec;
  releaseHold: RouteSpec;
  extendHold: RouteSpec;
}

const noAccess = problem("hold_not_found: no such hold, or no access to it");
const badBearer = problem("unauthorized: a bearer that is neither the admin token nor a valid buyer token");

export function holdRoutes(
  store: Store,
  gate: SellGate,
  access: OrderAccess,
  roomPass: AccessCheck,
): HoldRoutes {
  return {
    createHold: {
      method: "POST",
      url: "/v1/events/:eventId/holds",
      operationId: "createHold",
      summary: "Hold tickets for a while (a cart); they count against availability until they end",
      tag: "holds",
      buyer: true,
      idempotent: true,
      schema: { params: idParams("eventId"), body: holdBodySchema, headers: sellHeadersSchema },
      // An event behind a waiting room sells only to admitted buyers.
      preHandler: roomPass,
      responses: {
        201: {
          description: "The active hold with its access secret; Location names it",
          schema: newHoldSchema,
        },
        401: problem(
          "unauthorized: --buyer-auth jwt and no valid buyer token (or a bearer that is not valid)",
        ),
        403: problem("customer_mismatch: customerId differs from the buyer token's sub"),
        ...sellRefusals,
      },
      handler: (request, reply) =>
        gate.takeTickets(
          request,
          reply,
          (customerId, body, selection, idempotency) => ({
            type: "hold",
            customerId,
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
      summary: "One hold (its secret, its owner's buyer token, or the admin token)",
      tag: "holds",
      access: access.toHold,
      schema: { params: idParams("holdId"), querystring: accessQuerySchema },
      responses: {
        200: { description: "The hold", schema: holdSchema },
        401: badBearer,
        404: noAccess,
      },
      handler: async (request, reply) => {
        const { holdId } = request.params as { holdId: string };
        const found = (request.accessed as Hold | null) ?? (await store.getHold(holdId));
        return found ?? sendProblem(reply, problemOf("hold_not_found", "no such hold"));
      },
    },
    confirmHold: {
      method: "POST",
      url: "/v1/holds/:holdId/confirm",
      operationId: "confirmHold",
      summary:
        "Turn an active hold into a confirmed order (the payment step: pass the provider's paymentReference)",
      tag: "holds",
      access: access.toHold,
      idempotent: true,
      schema: {
        params: idParams("holdId"),
        body: confirmBodySchema,
        headers: idempotencyHeadersSchema,
        querystring: accessQuerySchema,
      },
      responses: {
        201: {
          description: "The confirmed order with its own access secret; Location names it",
          schema: newOrderSchema,
        },
        401: badBearer,
        404: noAccess,
        409: problem(
          "hold_not_active (already confirmed or released), sale_paused (when the event does not confirm holds while paused), sale_closed (closed by an admin), or idempotency_key_in_use",
        ),
        410: problem("hold_expired: the tickets went back on sale; a payment taken for it must be refunded"),
        422: problem("invalid_request or idempotency_key_reused"),
        503: unavailable,
      },
      handler: async (request, reply) => {
        const { holdId } = request.params as { holdId: string };
        const eventId = eventIdOfHold(holdId);
        if (!eventId) return sendProblem(reply, problemOf("hold_not_found", "no such hold"));
        const rawKey = request.headers["idempotency-key"] as string | undefined;
        let key: string | undefined;
        if (rawKey !== undefined) {
          // The key is the hold owner's, as the key that created the hold was (idempotency.ts).
          const owner = (request.accessed ?? (await store.getHold(holdId)))?.customerId;
          if (owner === undefined) return sendProblem(reply, problemOf("hold_not_found", "no such hold"));
          key = scopedKey(owner, rawKey);
        }
        const idempotency = idempotencyOf(key, "POST", request.routeOptions.url ?? "", holdId, request.body);
        const { paymentReference } = request.body as { paymentReference?: string };
        const command = {
          type: "confirm-hold" as const,
          holdId,
          paymentReference: paymentReference ?? null,
          idempotency,
        };
        const outcome = await gate.submit(reply, eventId, command, key);
        if (!outcome) return reply;
        if (!outcome.ok) return sendProblem(reply, problemOfRefusalFor(outcome.refusal, "hold_not_found"));
        gate.countSale(outcome);
        const order = outcome.value as Order;
        return reply.code(201).header("location", `/v1/orders/${order.id}`).send(gate.withSecret(order));
      },
    },
    extendHold: {
      method: "POST",
      url: "/v1/holds/:holdId/extend",
      operationId: "extendHold",
      summary:
        "Give an active hold more time: expiry = now + ttlSeconds, never past its creation + the event's maxHoldLifetimeSeconds",
      tag: "holds",
      access: access.toHold,
      schema: { params: idParams("holdId"), body: extendBodySchema, querystring: accessQuerySchema },
      responses: {
        200: { description: "The hold with its new expiry", schema: holdSchema },
        401: badBearer,
        404: noAccess,
        409: problem(
          "hold_extension_limit (already at its longest lifetime), hold_not_active, sale_paused or sale_closed",
        ),
        410: problem("hold_expired"),
        422: invalid,
        503: unavailable,
      },
      handler: async (request, reply) => {
        const { holdId } = request.params as { holdId: string };
        const eventId = eventIdOfHold(holdId);
        if (!eventId) return sendProblem(reply, problemOf("hold_not_found", "no such hold"));
        const { ttlSeconds } = request.body as { ttlSeconds?: number };
        const command = {
          type: "extend-hold" as const,
          holdId,
          ttlSeconds: ttlSeconds ?? HOLD_TTL_SECONDS.default,
        };
        const outcome = await gate.submit(reply, eventId, command, undefined);
        if (!outcome) return reply;
        if (!outcome.ok) return sendProblem(reply, problemOfRefusalFor(outcome.refusal, "hold_not_found"));
        return reply.code(200).send(outcome.value);
      },
    },
    releaseHold: {
      method: "DELETE",
      url: "/v1/holds/:holdId",
      operationId: "releaseHold",
      summary: "Release a hold; its tickets go back on sale (a repeat changes nothing)",
      tag: "holds",
      access: access.toHold,
      schema: { params: idParams("holdId"), querystring: accessQuerySchema },
      responses: { 204: { description: "Released" }, 401: badBearer, 404: noAccess, 503: unavailable },
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
