/**
 * Builds the Fastify app of one instance, apart from listen(), so that tests can inject() into it.
 * Every answer carries X-Served-By; every error is problem+json with a stable code.
 */
import Fastify, { LogController } from "fastify";
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { BoxofficeError, DomainError } from "../domain/errors.js";
import { AdminTokenCheck } from "../http/admin-token-check.js";
import { problemDetails, problemResponseText } from "../http/problem-details.js";
import type { LockProvider } from "../lock/lock-provider.js";
import type { SellPath } from "../sales/sell-path.js";
import { SellPathOverloadedError } from "../sales/sell-path.js";
import type { Store } from "../store/store.js";
import { deriveKey } from "../config/signing-secret.js";
import { PassSigner } from "../waiting-room/pass-signer.js";
import { RoomDirectory } from "../waiting-room/room-directory.js";
import { apiRoutes } from "./api-routes.js";
import { buildOpenApiDocument } from "./openapi.js";
import { registerWaitingPage } from "./routes/waiting-page.js";
import type { Problem } from "./problem.js";
import { problemOf, problemOfRefusal, sendProblem } from "./problem.js";
import type { ServerMetrics } from "./server-metrics.js";

/** Request bodies larger than this are refused with 413 before they are parsed. */
export const BODY_LIMIT_BYTES = 64 * 1024;

export interface AppOptions {
  store: Store;
  lock: LockProvider;
  sellPath: SellPath;
  metrics: ServerMetrics;
  /** Sent as X-Served-By on every answer. */
  instanceId: string;
  /** The bearer token admin calls need. */
  adminToken: string;
  /** The key behind what this instance signs for buyers (config/signing-secret.ts derives keys from it). */
  signingSecret: string;
  /** A pino logger; none (silent) when absent. */
  logger?: FastifyBaseLogger;
  /** The version shown in /openapi.json. */
  version?: string;
  readyTimeoutMs?: number;
}

/** Turns anything thrown on the way to an answer into a problem. */
function problemOfError(error: FastifyError | Error, routeUrl: string | undefined): Problem {
  if (error instanceof DomainError) return problemOfRefusal(error.refusal);
  if (error instanceof SellPathOverloadedError) return problemOf("unavailable", error.message);
  if (error instanceof BoxofficeError) {
    return error.retryable
      ? problemOf(
          "unavailable",
          `${error.code}: retry later (with the same Idempotency-Key, a retry is always safe)`,
        )
      : problemOf("internal_error", "the server failed to answer");
  }
  const fastifyError = error as FastifyError;
  if (fastifyError.validation) {
    // ajv's own words for a oneOf failure say nothing useful; both our oneOfs choose between two fields.
    if (fastifyError.validation.some((e) => e.keyword === "oneOf")) {
      const choice = routeUrl === "/v1/events" ? "capacity or seating" : "quantity or seats";
      return problemOf("invalid_request", `send either ${choice}, not both and not neither`);
    }
    const where = fastifyError.validationContext ?? "request";
    return problemOf("invalid_request", `${where}${fastifyError.message.replace(/^[a-z]+/, "")}`);
  }
  switch (fastifyError.code) {
    case "FST_ERR_CTP_BODY_TOO_LARGE":
      return problemOf("payload_too_large", `the body is over ${BODY_LIMIT_BYTES} bytes`);
    case "FST_ERR_CTP_INVALID_MEDIA_TYPE":
      return problemOf("unsupported_media_type", "send the body as application/json");
    case "FST_ERR_CTP_EMPTY_JSON_BODY":
      return problemOf("invalid_request", "the body is empty");
  }
  const status = fastifyError.statusCode ?? 500;
  if (status === 413) return problemOf("payload_too_large", `the body is over ${BODY_LIMIT_BYTES} bytes`);
  if (status === 415) return problemOf("unsupported_media_type", "send the body as application/json");
  // Broken JSON, forbidden keys (__proto__, constructor.prototype) and other malformed requests.
  if (status >= 400 && status < 500) return problemOf("invalid_request", error.message);
  return problemOf("internal_error", "the server failed to answer");
}

export async function buildApp(options: AppOptions): Promise<FastifyInstance> {
  const adminCheck = new AdminTokenCheck(options.adminToken);
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    // One log line per request would cost more than the sale at peak; errors are logged below.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: BODY_LIMIT_BYTES,
    // A client that trickles its request in (slowloris) is cut off instead of holding a socket forever.
    requestTimeout: 30_000,
    // Over-long ids still reach the handlers, which answer 404 with the code naming what was asked for.
    routerOptions: { maxParamLength: 2000 },
    // Malformed HTTP never reaches a route; answer it as problem+json with X-Served-By all the same.
    clientErrorHandler: (error, socket) => {
      if ((error as NodeJS.ErrnoException).code === "ECONNRESET" || !socket.writable) return;
      const tooLarge = (error as NodeJS.ErrnoException).code === "HPE_HEADER_OVERFLOW";
      const status = tooLarge ? 431 : 400;
      const title = tooLarge ? "Request header fields too large" : "Bad request";
      const problem = problemDetails(status, "invalid_request", title, "the request is not well-formed HTTP");
      socket.end(problemResponseText(problem, `X-Served-By: ${options.instanceId}\r\n`));
    },
    onProtoPoisoning: "error",
    onConstructorPoisoning: "error",
    // Requests that arrive while closing are still served (the store stays open until they finish);
    // they get `Connection: close`, so the client's next request goes to another instance.
    return503OnClosing: false,
    ajv: {
      customOptions: {
        // Unknown fields are an error, never silently dropped; "2" is not a number.
        removeAdditional: false,
        coerceTypes: false,
        useDefaults: false,
        allErrors: false,
      },
    },
  });

  // JSON only: Fastify would otherwise accept text/plain bodies as strings. An empty JSON body counts as
  // no body (confirm and cancel take none); prototype-polluting keys stay an error.
  app.removeContentTypeParser(["text/plain", "application/json"]);
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.addContentTypeParser("application/json", { parseAs: "string" }, (request, body, done) => {
    if (body === "") done(null, undefined);
    else parseJson(request, body as string, done);
  });

  app.addHook("onSend", async (_request, reply) => {
    reply.header("x-served-by", options.instanceId);
  });
  app.addHook("onResponse", async (request, reply) => {
    const route = request.routeOptions.url ?? "unmatched";
    options.metrics.httpRequests.inc({ method: request.method, route, status: reply.statusCode });
    options.metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
  });
  // Confirm and cancel take no body; an absent one is the empty object their schema expects.
  app.addHook("preValidation", async (request) => {
    if (request.body === undefined && (request.method === "POST" || request.method === "PUT")) {
      request.body = {};
    }
  });

  app.setErrorHandler((error: FastifyError, request: FastifyRequest, reply: FastifyReply) => {
    const problem = problemOfError(error, request.routeOptions.url);
    if (problem.status >= 500) {
      if (problem.status === 503) request.log.warn({ err: error }, "answered 503");
      else request.log.error({ err: error }, "request failed");
    }
    return sendProblem(reply, problem);
  });
  app.setNotFoundHandler((request, reply) =>
    sendProblem(reply, problemOf("not_found", `no route for ${request.method} ${request.url.split("?")[0]}`)),
  );

  const routes = apiRoutes({
    store: options.store,
    lock: options.lock,
    sellPath: options.sellPath,
    metrics: options.metrics,
    readyTimeoutMs: options.readyTimeoutMs ?? 2000,
    waitingRoom: {
      signer: new PassSigner(deriveKey(options.signingSecret, "waiting-room")),
      directory: new RoomDirectory(options.store.waitingRoom),
    },
  });
  const openApi = buildOpenApiDocument(routes, options.version ?? "1.0.0");

  for (const route of routes) {
    const response: Record<number, unknown> = {};
    for (const [status, spec] of Object.entries(route.responses)) {
      if (Number(status) < 300 && spec.schema) response[Number(status)] = spec.schema;
    }
    app.route({
      method: route.method,
      url: route.url,
      schema: { ...route.schema, response },
      onRequest: route.admin
        ? async (request, reply) => {
            if (!adminCheck.allows(request.headers.authorization)) {
              return sendProblem(
                reply,
                problemOf("unauthorized", "send Authorization: Bearer <admin token>"),
              );
            }
          }
        : undefined,
      preHandler: route.preHandler,
      handler: route.handler,
    });
  }
  app.get("/openapi.json", async () => openApi);
  registerWaitingPage(app, options.store);

  return app;
}
