/**
 * Orders: buy tickets of an event, read an order, cancel it.
 */
import { eventIdOfOrder } from "../../domain/ids.js";
import type { Store } from "../../store/store.js";
import { problemOf, problemOfRefusalFor, sendProblem } from "../problem.js";
import { invalid, problem, sellRefusals, unavailable } from "../problem-responses.js";
import { readById } from "../read-by-id.js";
import type { RouteSpec } from "../route-spec.js";
import { emptyBodySchema, idParams, sellHeadersSchema, orderBodySchema, orderSchema } from "../schemas.js";
import type { AccessCheck } from "../hooks/access-token-check.js";
import type { SellGate } from "../sell-gate.js";

export interface OrderRoutes {
  createOrder: RouteSpec;
  getOrder: RouteSpec;
  cancelOrder: RouteSpec;
}

export function orderRoutes(store: Store, gate: SellGate, access: AccessCheck): OrderRoutes {
  return {
    createOrder: {
      method: "POST",
      url: "/v1/events/:eventId/orders",
      operationId: "createOrder",
      summary: "Buy tickets: all or nothing, durable before the answer",
      tag: "buying",
      idempotent: true,
      schema: { params: idParams("eventId"), body: orderBodySchema, headers: sellHeadersSchema },
      // An event behind a waiting room sells only to admitted buyers.
      preHandler: access,
      responses: {
        201: { description: "The confirmed order; Location names it", schema: orderSchema },
        ...sellRefusals,
      },
      handler: (request, reply) =>
        gate.takeTickets(
          request,
          reply,
          (body, selection, idempotency) => ({
            type: "purchase",
            customerId: body.customerId,
            selection,
            idempotency,
          }),
          "/v1/orders/",
        ),
    },
    getOrder: {
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
    cancelOrder: {
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
        const outcome = await gate.submit(reply, eventId, { type: "cancel-order", orderId }, undefined);
        if (!outcome) return reply;
        if (!outcome.ok) return sendProblem(reply, problemOfRefusalFor(outcome.refusal, "order_not_found"));
        return reply.code(200).send(outcome.value);
      },
    },
  };
}
