/**
 * Builds the Fastify app of one instance, apart from listen(), so that tests can inject() into it.
 * Every answer carries X-Served-By; every error is problem+json with a stable code.
 */
import Fastify, { LogController } from "fastify";
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { BuyerAuthConfig } from "../config/buyer-auth.js";
import { NO_BUYER_AUTH } from "../config/buyer-auth.js";
import { BoxofficeError, DomainError } from "../domain/errors.js";
import { AdminTokenCheck } from "../http/admin-token-check.js";
import { REQUEST_ID_HEADER, RequestIdGenerator, isSafeRequestId } from "../http/request-id.js";
import { problemDetails, problemResponseText } from "../http/problem-details.js";
import type { LockProvider } from "../lock/lock-provider.js";
import type { SellPath } from "../sales/sell-path.js";
import { SellPathOverloadedError } from "../sales/sell-path.js";
import type { Store } from "../store/store.js";
import { deriveKey } from "../config/signing-secret.js";
import { PassSigner } from "../waiting-room/pass-signer.js";
import { ADMISSION_INTERVAL_MS } from "../waiting-room/admission-ticker.js";
import { CollectionLog } from "../waiting-room/collection-log.js";
import { RoomDirectory } from "../waiting-room/room-directory.js";
import { apiRoutes } from "./api-routes.js";
import { BuyerIdentity } from "./hooks/buyer-identity.js";
import { buildOpenApiDocument } from "./openapi.js";
import { OrderAccess } from "./order-access.js";
import { registerStorefront } from "./routes/storefront.js";
import { registerDashboard } from "./routes/dashboard.js";
import { registerWaitingPage } from "./routes/waiting-page.js";
import type { Problem } from "./problem.js";
import type { RouteSpec } from "./route-spec.js";
import { requestSpanOf, setRequestSpan } from "./request-trace.js";
import type { Tracing } from "../telemetry/tracing.js";
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
  /** How buyers prove who they are (config/buyer-auth.ts); none when absent. */
  buyerAuth?: BuyerAuthConfig;
  /** A pino logger; none (silent) when absent. */
  logger?: FastifyBaseLogger;
  /** The version shown in /openapi.json. */
  version?: string;
  readyTimeoutMs?: number;
  /**
   * Which routes this app serves: "all" (the default, one port for everything), "public" (not the admin
   * calls nor /metrics) or "admin" (those, with /health and /ready), for `--admin-port`.
   */
  surface?: "all" | "public" | "admin";
  /** OpenTelemetry traces (`--otel-endpoint`); none when absent. */
  tracing?: Tracing;
  /**
   * Which events have a waiting room: one per instance, shared by its apps (with `--admin-port`, the
   * admin app's PUT must reach the public app's cache at once); a new one with the default cache when
   * absent.
   */
  roomDirectory?: RoomDirectory;
  /**
   * One waiting-room admission pass now (the instance's AdmissionTicker.passNow): joins that land within
   * the look-ahead are answered with their admission times (waiting-room/join-batcher.ts). Without it,
   * joined buyers learn their times from their polls.
   */
  admitNow?: () => Promise<void>;
}

/** Whether a route is served on a surface: operators' routes go to the admin one when there is one. */
function servedOn(surface: "all" | "public" | "admin", route: RouteSpec): boolean {
  if (surface === "all") return true;
  const forOperators = route.admin === true || route.operatorOnly === true;
  if (surface === "public") return !forOperators;
  return forOperators || route.url === "/health" || route.url === "/ready";
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
  const requestIds = new RequestIdGenerator();
  const identity = await BuyerIdentity.create(adminCheck, options.buyerAuth ?? NO_BUYER_AUTH);
  const access = new OrderAccess(options.store, options.signingSecret);
  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    // The balancer's X-Request-Id (or a client's, when safe: bounded, no control byte), else one made
    // here; every line logged for the request carries it as `requestId`, and the answer echoes it.
    requestIdHeader: false,
    genReqId: (request) => {
      const sent = request.headers[REQUEST_ID_HEADER];
      return typeof sent === "string" && isSafeRequestId(sent) ? sent : requestIds.next();
    },
    // One log line per request would cost more than the sale at peak; errors are logged below.
    logController: new LogController({ disableRequestLogging: true, requestIdLogLabel: "requestId" }),
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

  const tracing = options.tracing;
  if (tracing !== undefined) {
    // A span per request, its parent the balancer's (or the client's) traceparent.
    app.addHook("onRequest", async (request) => {
      const route = request.routeOptions.url ?? "unmatched";
      setRequestSpan(
        request,
        tracing.startRequest(`${request.method} ${route}`, request.headers, {
          "http.request.method": request.method,
          "http.route": route,
          "boxoffice.request_id": request.id,
        }),
      );
    });
  }

  app.decorateRequest("caller", null);
  app.decorateRequest("accessed", null);
  // The hooks every request runs are plain callbacks, not async functions: an async hook costs a promise
  // and a turn of the microtask queue per request, for work that never waits.
  app.addHook("onSend", (request, reply, payload, done) => {
    reply.header("x-served-by", options.instanceId);
    reply.header(REQUEST_ID_HEADER, request.id);
    done(null, payload);
  });
  app.addHook("onResponse", (request, reply, done) => {
    const route = request.routeOptions.url ?? "unmatched";
    requestSpanOf(request)?.end(reply.statusCode);
    // One line per request only at debug: at peak it would cost more than the sale (the balancer's
    // access log is the record of every request).
    if (request.log.level === "debug" || request.log.level === "trace")
      request.log.debug(
        { method: request.method, route, status: reply.statusCode, ms: reply.elapsedTime },
        "request completed",
      );
    options.metrics.httpRequests.inc({ method: request.method, route, status: reply.statusCode });
    options.metrics.httpDuration.observe({ method: request.method, route }, reply.elapsedTime / 1000);
    done();
  });
  // Confirm and cancel take no body; an absent one is the empty object their schema expects.
  app.addHook("preValidation", (request, _reply, done) => {
    if (
      request.body === undefined &&
      (request.method === "POST" || request.method === "PUT" || request.method === "PATCH")
    ) {
      request.body = {};
    }
    done();
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

  const collections = new CollectionLog(options.store.waitingRoom, ADMISSION_INTERVAL_MS, (error) =>
    app.log.warn({ err: error }, "noting collected access tokens failed (they count as abandoned)"),
  );
  app.addHook("onClose", () => collections.close());
  const routes = apiRoutes({
    store: options.store,
    lock: options.lock,
    sellPath: options.sellPath,
    metrics: options.metrics,
    readyTimeoutMs: options.readyTimeoutMs ?? 2000,
    isAdmin: (request) => adminCheck.allows(request.headers.authorization),
    identity,
    access,
    waitingRoom: {
      signer: new PassSigner(deriveKey(options.signingSecret, "waiting-room")),
      collections,
      ...(options.admitNow ? { admitNow: options.admitNow } : {}),
      directory:
        options.roomDirectory ??
        new RoomDirectory(options.store.waitingRoom, (eventId) => options.store.getEvent(eventId)),
    },
  });
  const openApi = buildOpenApiDocument(routes, options.version ?? "1.0.0");

  const surface = options.surface ?? "all";
  for (const route of routes) {
    if (!servedOn(surface, route)) continue;
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
        : route.buyer || route.access
          ? identity.hook
          : undefined,
      // Who may act on an order or hold (order-access.ts); a waiting room's pass (hooks/access-token-check.ts).
      preHandler: [route.access, route.preHandler].filter((hook) => hook !== undefined),
      handler: route.handler,
    });
  }
  if (surface !== "admin") {
    app.get("/openapi.json", async () => openApi);
    registerWaitingPage(app, options.store);
    registerStorefront(app);
    registerDashboard(app);
  }

  return app;
}
