/**
 * Orders: buy tickets of an event, read an order, cancel it (with its secret, its owner's buyer token or
 * the admin token: order-access.ts), and the operator's list and CSV export of an event's orders.
 */
import { eventIdOfOrder, isEventId } from "../../domain/ids.js";
import type { Order } from "../../domain/sale.js";
import type { OrderFilter, Store } from "../../store/store.js";
import type { AccessCheck } from "../hooks/access-token-check.js";
import type { OrderAccess } from "../order-access.js";
import { accessQuerySchema } from "../order-access.js";
import { CSV_PAGE_SIZE, ordersCsv } from "../orders-csv.js";
import { problemOf, problemOfRefusalFor, sendProblem } from "../problem.js";
import { invalid, problem, sellRefusals, unavailable } from "../problem-responses.js";
import type { RouteSpec } from "../route-spec.js";
import {
  emptyBodySchema,
  exportOrdersQuerySchema,
  idParams,
  listOrdersQuerySchema,
  newOrderSchema,
  orderBodySchema,
  orderPageSchema,
  orderSchema,
  sellHeadersSchema,
} from "../schemas.js";
import type { SellGate } from "../sell-gate.js";

const DEFAULT_ORDER_PAGE_SIZE = 100;

export interface OrderRoutes {
  createOrder: RouteSpec;
  getOrder: RouteSpec;
  cancelOrder: RouteSpec;
  listOrders: RouteSpec;
  exportOrders: RouteSpec;
}

interface OrderFilterQuery {
  status?: Order["status"];
  customerId?: string;
  createdAfter?: string;
  createdBefore?: string;
}

/** The store's filter of a list or export query; instants normalised to toISOString's form. Null: not an instant. */
function filterOf(query: OrderFilterQuery): OrderFilter | null {
  const filter: OrderFilter = {};
  if (query.status !== undefined) filter.status = query.status;
  if (query.customerId !== undefined) filter.customerId = query.customerId;
  for (const name of ["createdAfter", "createdBefore"] as const) {
    const text = query[name];
    if (text === undefined) continue;
    const ms = Date.parse(text);
    if (!Number.isFinite(ms) || !isCalendarDate(text)) return null;
    filter[name] = new Date(ms).toISOString();
  }
  return filter;
}

/** Date.parse rolls 2026-02-31 over into March; an instant's date must be one the calendar has. */
function isCalendarDate(text: string): boolean {
  const [year, month, day] = text.slice(0, 10).split("-").map(Number) as [number, number, number];
  const date = new Date(Date.UTC(year, month - 1, day));
  return date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

const badInstant = problemOf("invalid_request", "createdAfter and createdBefore must be real instants");
const noEvent = problemOf("event_not_found", "no such event");

export function orderRoutes(
  store: Store,
  gate: SellGate,
  access: OrderAccess,
  roomPass: AccessCheck,
): OrderRoutes {
  return {
    createOrder: {
      method: "POST",
      url: "/v1/events/:eventId/orders",
      operationId: "createOrder",
      summary: "Buy tickets: all or nothing, durable before the answer",
      tag: "buying",
      buyer: true,
      idempotent: true,
      schema: { params: idParams("eventId"), body: orderBodySchema, headers: sellHeadersSchema },
      // An event behind a waiting room sells only to admitted buyers.
      preHandler: roomPass,
      responses: {
        201: {
          description: "The confirmed order with its access secret; Location names it",
          schema: newOrderSchema,
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
          (customerId, _body, selection, idempotency) => ({
            type: "purchase",
            customerId,
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
      summary: "One order (its secret, its owner's buyer token, or the admin token)",
      tag: "orders",
      access: access.toOrder,
      schema: { params: idParams("orderId"), querystring: accessQuerySchema },
      responses: {
        200: { description: "The order", schema: orderSchema },
        401: problem("unauthorized: a bearer that is neither the admin token nor a valid buyer token"),
        404: problem("order_not_found: no such order, or no access to it"),
      },
      handler: async (request, reply) => {
        const { orderId } = request.params as { orderId: string };
        const found = (request.accessed as Order | null) ?? (await store.getOrder(orderId));
        return found ?? sendProblem(reply, problemOf("order_not_found", "no such order"));
      },
    },
    cancelOrder: {
      method: "POST",
      url: "/v1/orders/:orderId/cancel",
      operationId: "cancelOrder",
      summary: "Cancel an order; its tickets go back on sale exactly once (a repeat answers the same)",
      tag: "orders",
      access: access.toOrder,
      schema: { params: idParams("orderId"), body: emptyBodySchema, querystring: accessQuerySchema },
      responses: {
        200: { description: "The cancelled order", schema: orderSchema },
        401: problem("unauthorized: a bearer that is neither the admin token nor a valid buyer token"),
        404: problem("order_not_found: no such order, or no access to it"),
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
    listOrders: {
      method: "GET",
      url: "/v1/events/:eventId/orders",
      operationId: "listOrders",
      summary: "An event's orders, filtered, in id order, a keyset page at a time (admin)",
      tag: "orders",
      admin: true,
      schema: { params: idParams("eventId"), querystring: listOrdersQuerySchema },
      responses: {
        200: { description: "A page of orders", schema: orderPageSchema },
        401: problem("unauthorized"),
        404: problem("event_not_found"),
        422: invalid,
        503: unavailable,
      },
      handler: async (request, reply) => {
        const { eventId } = request.params as { eventId: string };
        if (!isEventId(eventId)) return sendProblem(reply, noEvent);
        const query = request.query as OrderFilterQuery & { limit?: string; cursor?: string };
        const filter = filterOf(query);
        if (filter === null) return sendProblem(reply, badInstant);
        const limit = query.limit === undefined ? DEFAULT_ORDER_PAGE_SIZE : Number(query.limit);
        const page = await store.listOrders(eventId, filter, { limit, cursor: query.cursor ?? null });
        return page ?? sendProblem(reply, noEvent);
      },
    },
    exportOrders: {
      method: "GET",
      url: "/v1/events/:eventId/orders.csv",
      operationId: "exportOrders",
      summary: "An event's orders as CSV, streamed a page at a time in bounded memory (admin)",
      tag: "orders",
      admin: true,
      schema: { params: idParams("eventId"), querystring: exportOrdersQuerySchema },
      responses: {
        200: { description: "text/csv, a header line then one line per order", contentType: "text/csv" },
        401: problem("unauthorized"),
        404: problem("event_not_found"),
        422: invalid,
        503: unavailable,
      },
      handler: async (request, reply) => {
        const { eventId } = request.params as { eventId: string };
        if (!isEventId(eventId)) return sendProblem(reply, noEvent);
        const filter = filterOf(request.query as OrderFilterQuery);
        if (filter === null) return sendProblem(reply, badInstant);
        const readPage = (f: OrderFilter, cursor: string | null) =>
          store.listOrders(eventId, f, { limit: CSV_PAGE_SIZE, cursor });
        // The first page before the status line: a missing event or a store that is down is still a
        // problem answer. A failure after it cuts the response short (no complete CSV can be claimed).
        const first = await readPage(filter, null);
        if (first === null) return sendProblem(reply, noEvent);
        return reply
          .code(200)
          .header("content-type", "text/csv; charset=utf-8")
          .header("content-disposition", `attachment; filename="${eventId}-orders.csv"`)
          .header("cache-control", "no-store")
          .send(ordersCsv(first, readPage, filter));
      },
    },
  };
}
