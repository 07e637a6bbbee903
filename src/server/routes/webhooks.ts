/**
 * Webhooks (admin): subscribe endpoints, list and read them, remove them; list deliveries and replay
 * one. The endpoint's secret is generated here and shown once, in the answer that creates it.
 */
import type { DeliveryStatus, WebhookEventType } from "../../domain/webhook.js";
import {
  DELIVERY_ID_PATTERN,
  DELIVERY_STATUSES,
  ENDPOINT_ID_PATTERN,
  WEBHOOK_EVENT_TYPES,
  newEndpointId,
} from "../../domain/webhook.js";
import type { Store } from "../../store/store.js";
import { checkEndpointUrl, MAX_ENDPOINT_URL_LENGTH } from "../../webhooks/endpoint-url.js";
import { newEndpointSecret } from "../../webhooks/webhook-signer.js";
import { problemOf, sendProblem } from "../problem.js";
import { invalid, problem, tooLarge, unavailable } from "../problem-responses.js";
import type { RouteSpec } from "../route-spec.js";
import type { JsonSchema } from "../schemas.js";
import { idParams } from "../schemas.js";

const DEFAULT_PAGE_SIZE = 20;
const time = { type: "string", format: "date-time" } as const;
const nullableTime = { type: ["string", "null"], format: "date-time" } as const;
const eventTypes = {
  type: "array",
  maxItems: WEBHOOK_EVENT_TYPES.length,
  uniqueItems: true,
  items: { type: "string", enum: [...WEBHOOK_EVENT_TYPES] },
  description: "the message types it gets; empty or absent: every type",
} as const;

const endpointProperties = {
  id: { type: "string" },
  url: { type: "string" },
  eventTypes,
  enabled: { type: "boolean" },
  createdAt: time,
} as const;
const endpointRequired = ["id", "url", "eventTypes", "enabled", "createdAt"];

export const webhookEndpointSchema: JsonSchema = {
  type: "object",
  properties: endpointProperties,
  required: endpointRequired,
};

const createdEndpointSchema: JsonSchema = {
  type: "object",
  properties: {
    ...endpointProperties,
    secret: {
      type: "string",
      description: "whsec_<base64>: the signing secret, shown only in this answer; keep it",
    },
  },
  required: [...endpointRequired, "secret"],
};

const endpointPageSchema: JsonSchema = {
  type: "object",
  properties: {
    endpoints: { type: "array", items: webhookEndpointSchema },
    nextCursor: { type: ["string", "null"] },
  },
  required: ["endpoints", "nextCursor"],
};

export const webhookDeliverySchema: JsonSchema = {
  type: "object",
  properties: {
    id: { type: "string" },
    messageId: { type: "string", description: "the webhook-id header; the same on every attempt" },
    endpointId: { type: "string" },
    eventId: { type: "string" },
    type: { type: "string", enum: [...WEBHOOK_EVENT_TYPES] },
    status: { type: "string", enum: [...DELIVERY_STATUSES] },
    attempts: { type: "integer" },
    lastStatusCode: { type: ["integer", "null"] },
    lastError: { type: ["string", "null"] },
    nextAttemptAt: nullableTime,
    createdAt: time,
    deliveredAt: nullableTime,
  },
  required: [
    "id",
    "messageId",
    "endpointId",
    "eventId",
    "type",
    "status",
    "attempts",
    "lastStatusCode",
    "lastError",
    "nextAttemptAt",
    "createdAt",
    "deliveredAt",
  ],
};

const deliveryPageSchema: JsonSchema = {
  type: "object",
  properties: {
    deliveries: { type: "array", items: webhookDeliverySchema },
    nextCursor: { type: ["string", "null"] },
  },
  required: ["deliveries", "nextCursor"],
};

const newEndpointBodySchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    url: {
      type: "string",
      minLength: 1,
      maxLength: MAX_ENDPOINT_URL_LENGTH,
      pattern: "^https?://[\\x21-\\x7E]+$",
      description: "http or https, without user name, password or fragment",
    },
    eventTypes,
    enabled: { type: "boolean", description: "default true" },
  },
  required: ["url"],
};

const limitQuery = {
  type: "string",
  pattern: "^(?:[1-9]|[1-9][0-9]|100)$",
  description: "1 to 100, default 20",
} as const;

const listEndpointsQuerySchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    limit: limitQuery,
    cursor: { type: "string", pattern: ENDPOINT_ID_PATTERN, description: "the previous page's nextCursor" },
  },
};

const listDeliveriesQuerySchema: JsonSchema = {
  type: "object",
  additionalProperties: false,
  properties: {
    endpointId: { type: "string", pattern: ENDPOINT_ID_PATTERN },
    status: { type: "string", enum: [...DELIVERY_STATUSES] },
    limit: limitQuery,
    cursor: { type: "string", pattern: DELIVERY_ID_PATTERN, description: "the previous page's nextCursor" },
  },
};

const ENDPOINT_ID = new RegExp(ENDPOINT_ID_PATTERN);
const DELIVERY_ID = new RegExp(DELIVERY_ID_PATTERN);
const unauthorized = problem("unauthorized");

export interface WebhookRoutes {
  createEndpoint: RouteSpec;
  listEndpoints: RouteSpec;
  getEndpoint: RouteSpec;
  deleteEndpoint: RouteSpec;
  listDeliveries: RouteSpec;
  getDelivery: RouteSpec;
  replayDelivery: RouteSpec;
}

export function webhookRoutes(store: Store): WebhookRoutes {
  const webhooks = store.webhooks;
  const endpointNotFound = problemOf("webhook_not_found", "no such webhook endpoint");
  const deliveryNotFound = problemOf("delivery_not_found", "no such webhook delivery");
  return {
    createEndpoint: {
      method: "POST",
      url: "/v1/webhooks",
      operationId: "createWebhookEndpoint",
      summary: "Subscribe an endpoint to webhook messages; the answer shows its signing secret, once",
      tag: "webhooks",
      admin: true,
      schema: { body: newEndpointBodySchema },
      responses: {
        201: { description: "The endpoint and its secret; Location names it", schema: createdEndpointSchema },
        401: unauthorized,
        413: tooLarge,
        422: invalid,
        503: unavailable,
      },
      handler: async (request, reply) => {
        const body = request.body as { url: string; eventTypes?: WebhookEventType[]; enabled?: boolean };
        const checked = checkEndpointUrl(body.url);
        if (!checked.ok) return sendProblem(reply, problemOf("invalid_request", checked.reason));
        const now = new Date();
        const secret = newEndpointSecret();
        const endpoint = await webhooks.createEndpoint({
          id: newEndpointId(now.getTime()),
          url: checked.url,
          eventTypes: body.eventTypes ?? [],
          enabled: body.enabled ?? true,
          createdAt: now.toISOString(),
          secret,
        });
        return reply
          .code(201)
          .header("location", `/v1/webhooks/${endpoint.id}`)
          .header("cache-control", "no-store")
          .send({ ...endpoint, secret });
      },
    },
    listEndpoints: {
      method: "GET",
      url: "/v1/webhooks",
      operationId: "listWebhookEndpoints",
      summary: "List webhook endpoints, oldest first, a page at a time",
      tag: "webhooks",
      admin: true,
      schema: { querystring: listEndpointsQuerySchema },
      responses: {
        200: { description: "A page of endpoints", schema: endpointPageSchema },
        401: unauthorized,
        422: invalid,
      },
      handler: async (request) => {
        const query = request.query as { limit?: string; cursor?: string };
        return webhooks.listEndpoints({
          limit: query.limit === undefined ? DEFAULT_PAGE_SIZE : Number(query.limit),
          cursor: query.cursor ?? null,
        });
      },
    },
    getEndpoint: {
      method: "GET",
      url: "/v1/webhooks/:endpointId",
      operationId: "getWebhookEndpoint",
      summary: "One webhook endpoint (without its secret)",
      tag: "webhooks",
      admin: true,
      schema: { params: idParams("endpointId") },
      responses: {
        200: { description: "The endpoint", schema: webhookEndpointSchema },
        401: unauthorized,
        404: problem("webhook_not_found"),
      },
      handler: async (request, reply) => {
        const { endpointId } = request.params as { endpointId: string };
        const endpoint = ENDPOINT_ID.test(endpointId) ? await webhooks.getEndpoint(endpointId) : null;
        return endpoint ?? sendProblem(reply, endpointNotFound);
      },
    },
    deleteEndpoint: {
      method: "DELETE",
      url: "/v1/webhooks/:endpointId",
      operationId: "deleteWebhookEndpoint",
      summary: "Remove a webhook endpoint and its deliveries; nothing more is sent to it",
      tag: "webhooks",
      admin: true,
      schema: { params: idParams("endpointId") },
      responses: {
        204: { description: "Removed" },
        401: unauthorized,
        404: problem("webhook_not_found"),
        503: unavailable,
      },
      handler: async (request, reply) => {
        const { endpointId } = request.params as { endpointId: string };
        const deleted = ENDPOINT_ID.test(endpointId) && (await webhooks.deleteEndpoint(endpointId));
        return deleted ? reply.code(204).send() : sendProblem(reply, endpointNotFound);
      },
    },
    listDeliveries: {
      method: "GET",
      url: "/v1/webhooks/deliveries",
      operationId: "listWebhookDeliveries",
      summary: "List webhook deliveries, newest first, by endpoint and status, a page at a time",
      tag: "webhooks",
      admin: true,
      schema: { querystring: listDeliveriesQuerySchema },
      responses: {
        200: { description: "A page of deliveries", schema: deliveryPageSchema },
        401: unauthorized,
        422: invalid,
      },
      handler: async (request) => {
        const query = request.query as {
          endpointId?: string;
          status?: DeliveryStatus;
          limit?: string;
          cursor?: string;
        };
        return webhooks.listDeliveries({
          endpointId: query.endpointId ?? null,
          status: query.status ?? null,
          limit: query.limit === undefined ? DEFAULT_PAGE_SIZE : Number(query.limit),
          cursor: query.cursor ?? null,
        });
      },
    },
    getDelivery: {
      method: "GET",
      url: "/v1/webhooks/deliveries/:deliveryId",
      operationId: "getWebhookDelivery",
      summary: "One webhook delivery: status, attempts, last error, next attempt",
      tag: "webhooks",
      admin: true,
      schema: { params: idParams("deliveryId") },
      responses: {
        200: { description: "The delivery", schema: webhookDeliverySchema },
        401: unauthorized,
        404: problem("delivery_not_found"),
      },
      handler: async (request, reply) => {
        const { deliveryId } = request.params as { deliveryId: string };
        const delivery = DELIVERY_ID.test(deliveryId) ? await webhooks.getDelivery(deliveryId) : null;
        return delivery ?? sendProblem(reply, deliveryNotFound);
      },
    },
    replayDelivery: {
      method: "POST",
      url: "/v1/webhooks/deliveries/:deliveryId/replay",
      operationId: "replayWebhookDelivery",
      summary: "Send a delivery again (the same message id): pending and due now, with a new retry window",
      tag: "webhooks",
      admin: true,
      schema: { params: idParams("deliveryId") },
      responses: {
        200: { description: "The delivery, pending", schema: webhookDeliverySchema },
        401: unauthorized,
        404: problem("delivery_not_found"),
        503: unavailable,
      },
      handler: async (request, reply) => {
        const { deliveryId } = request.params as { deliveryId: string };
        const delivery = DELIVERY_ID.test(deliveryId)
          ? await webhooks.replayDelivery(deliveryId, new Date())
          : null;
        return delivery ?? sendProblem(reply, deliveryNotFound);
      },
    },
  };
}
