/**
 * The OpenAPI 3.1 document of the API, built from the route table the server registers, so it lists
 * exactly the routes and schemas the code uses.
 */
import type { RouteSpec } from "./route-spec.js";
import type { JsonSchema } from "./schemas.js";
import { problemSchema } from "./schemas.js";

/** "/v1/events/:eventId" → "/v1/events/{eventId}". */
export function openApiPath(fastifyUrl: string): string {
  return fastifyUrl.replace(/:([A-Za-z0-9_]+)/g, "{$1}");
}

function parametersOf(route: RouteSpec): JsonSchema[] {
  const parameters: JsonSchema[] = [];
  const params = route.schema.params?.properties as Record<string, JsonSchema> | undefined;
  for (const [name, schema] of Object.entries(params ?? {})) {
    parameters.push({ name, in: "path", required: true, schema });
  }
  const query = route.schema.querystring?.properties as Record<string, JsonSchema> | undefined;
  for (const [name, schema] of Object.entries(query ?? {})) {
    const { description, ...rest } = schema;
    parameters.push({ name, in: "query", required: false, description, schema: rest });
  }
  const headerProperties = route.schema.headers?.properties as Record<string, JsonSchema> | undefined;
  for (const [name, schema] of Object.entries(headerProperties ?? {})) {
    if (name === "idempotency-key") continue;
    const { description, ...rest } = schema;
    const title = name.replace(
      /(^|-)([a-z])/g,
      (_, dash: string, letter: string) => dash + letter.toUpperCase(),
    );
    parameters.push({ name: title, in: "header", required: false, description, schema: rest });
  }
  if (route.idempotent) {
    const headers = route.schema.headers?.properties as Record<string, JsonSchema> | undefined;
    parameters.push({
      name: "Idempotency-Key",
      in: "header",
      required: false,
      description:
        "Makes a retry safe: a repeat with the same key and body, for the same event, answers the first " +
        "response from any instance for at least 24 hours.",
      schema: headers?.["idempotency-key"] ?? { type: "string" },
    });
  }
  return parameters;
}

export function buildOpenApiDocument(routes: readonly RouteSpec[], version: string): JsonSchema {
  const paths: Record<string, Record<string, JsonSchema>> = {};
  for (const route of routes) {
    const responses: Record<string, JsonSchema> = {};
    for (const [status, spec] of Object.entries(route.responses)) {
      const ok = Number(status) < 400;
      const contentType = spec.contentType ?? (ok ? "application/json" : "application/problem+json");
      const schema = spec.schema ?? (ok ? undefined : { $ref: "#/components/schemas/Problem" });
      const response: JsonSchema = { description: spec.description };
      if (schema) response.content = { [contentType]: { schema } };
      else if (spec.contentType) response.content = { [contentType]: { schema: { type: "string" } } };
      if (Number(status) === 503) {
        response.headers = { "Retry-After": { schema: { type: "integer" }, description: "Seconds" } };
      }
      if (Number(status) === 201) {
        response.headers = { Location: { schema: { type: "string" }, description: "The new resource" } };
      }
      responses[status] = response;
    }
    if (route.admin) responses["401"] ??= { description: "unauthorized" };
    const operation: JsonSchema = {
      operationId: route.operationId,
      summary: route.summary,
      tags: [route.tag],
      parameters: parametersOf(route),
      responses,
    };
    if (route.admin) operation.security = [{ adminToken: [] }];
    // An order's or hold's secret, its owner's buyer token, or the admin token (order-access.ts).
    else if (route.access) operation.security = [{ orderSecret: [] }, { buyerToken: [] }, { adminToken: [] }];
    // Anonymous with --buyer-auth none; a buyer token with jwt; the admin token acts for a customerId.
    else if (route.buyer) operation.security = [{}, { buyerToken: [] }, { adminToken: [] }];
    if (route.schema.body) {
      operation.requestBody = {
        required: route.schema.body.required !== undefined || route.schema.body.oneOf !== undefined,
        content: { "application/json": { schema: route.schema.body } },
      };
    }
    const path = openApiPath(route.url);
    paths[path] ??= {};
    paths[path][route.method.toLowerCase()] = operation;
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "boxoffice",
      version,
      description:
        "Sells tickets with strong consistency: never oversells, never sells a seat twice, and a retried " +
        "request never buys twice. Errors are RFC 9457 problem details with a stable `code`; every " +
        "response carries `X-Served-By`; a 503 always carries `Retry-After`, and a write retried with the same " +
        "`Idempotency-Key` is always safe and answers as the first attempt did.",
    },
    paths,
    components: {
      schemas: { Problem: problemSchema },
      securitySchemes: {
        adminToken: { type: "http", scheme: "bearer" },
        buyerToken: {
          type: "http",
          scheme: "bearer",
          bearerFormat: "JWT",
          description: "--buyer-auth jwt: a token from the operator's login; its sub is the customer",
        },
        orderSecret: {
          type: "apiKey",
          in: "header",
          name: "X-Order-Secret",
          description: "the secret answered when the order or hold was created (or ?secret= in a link)",
        },
      },
    },
  };
}
