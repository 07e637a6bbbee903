/**
 * One description per route, read twice: build-app.ts registers it with Fastify (its schemas validate
 * requests and serialize the success answers) and openapi.ts turns the same objects into /openapi.json.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { AccessCheck } from "./order-access.js";
import type { JsonSchema } from "./schemas.js";

export interface ResponseSpec {
  description: string;
  /** The body's schema; absent for bodyless answers (204) and non-JSON ones. */
  schema?: JsonSchema;
  /** Defaults to application/json for 2xx and application/problem+json otherwise. */
  contentType?: string;
}

export interface RouteSpec {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  /** Fastify's pattern, e.g. "/v1/events/:eventId". */
  url: string;
  operationId: string;
  summary: string;
  tag: string;
  /** Needs `Authorization: Bearer <admin token>`. */
  admin?: boolean;
  /**
   * For operators, not buyers (metrics): with `--admin-port` it is served there and not on the public
   * port, like every `admin` route.
   */
  operatorOnly?: boolean;
  /**
   * A buyer route: the caller is identified first (hooks/buyer-identity.ts sets `request.caller`; a bad
   * bearer is 401). Implied by `access`.
   */
  buyer?: boolean;
  /** Who may act on the route's order or hold (order-access.ts), checked before the handler. */
  access?: AccessCheck;
  /** Accepts an `Idempotency-Key` header. */
  idempotent?: boolean;
  schema: {
    params?: JsonSchema;
    querystring?: JsonSchema;
    body?: JsonSchema;
    headers?: JsonSchema;
  };
  responses: Record<number, ResponseSpec>;
  /** Runs before the handler (after validation): e.g. the waiting room's access check. */
  preHandler?: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
  handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
}
