/**
 * One description per route, read twice: build-app.ts registers it with Fastify (its schemas validate
 * requests and serialize the success answers) and openapi.ts turns the same objects into /openapi.json.
 */
import type { FastifyReply, FastifyRequest } from "fastify";
import type { JsonSchema } from "./schemas.js";

export interface ResponseSpec {
  description: string;
  /** The body's schema; absent for bodyless answers (204) and non-JSON ones. */
  schema?: JsonSchema;
  /** Defaults to application/json for 2xx and application/problem+json otherwise. */
  contentType?: string;
}

export interface RouteSpec {
  method: "GET" | "POST" | "PATCH" | "DELETE";
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
  /** Accepts an `Idempotency-Key` header. */
  idempotent?: boolean;
  schema: {
    params?: JsonSchema;
    querystring?: JsonSchema;
    body?: JsonSchema;
    headers?: JsonSchema;
  };
  responses: Record<number, ResponseSpec>;
  handler: (request: FastifyRequest, reply: FastifyReply) => Promise<unknown>;
}
