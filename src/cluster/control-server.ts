/**
 * The supervisor's control endpoint, on loopback unless `--metrics-host` says otherwise, on a known port
 * (`--metrics-port`, default 9180): `GET /status` (JSON, read by `boxoffice status`), `GET /metrics`
 * (Prometheus) and `POST /restart` (rolling restart, as `boxoffice restart` or SIGHUP). Its address is
 * written to <data dir>/cluster.json so the CLI can find it.
 *
 * The dashboard's calls, which the balancer passes on from `/_lb/cluster/…` (balancer/admin-api.ts), all
 * behind the admin token: `GET /cluster` (the live view), `POST /cluster/scale` `{"instances": n}` and
 * `POST /cluster/instances/{id}/drain`. Refusals are problem+json.
 */
import Fastify from "fastify";
import type { FastifyBaseLogger, FastifyError, FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { AdminTokenCheck } from "../http/admin-token-check.js";
import { problemDetails, replyProblem } from "../http/problem-details.js";
import type { Logger } from "../log/logger.js";
import { ClusterActionError, type Supervisor } from "./supervisor.js";

const STATUS_OF_CODE: Record<ClusterActionError["code"], [number, string]> = {
  instance_not_found: [404, "No such instance"],
  invalid_transition: [409, "Invalid transition"],
  invalid_request: [422, "Invalid request"],
};

/** Ids the supervisor gives its instances (`i-1`, `i-2`, …); anything else is not one of them. */
const INSTANCE_ID = "^i-[0-9]{1,6}$";

export async function startControlServer(
  supervisor: Supervisor,
  adminToken: string,
  log: Logger,
  host = "127.0.0.1",
  port = 0,
): Promise<{ url: string; close(): Promise<void> }> {
  // The supervisor's logger from warn up: a failing handler is logged; the requests themselves
  // (`boxoffice status` polls) are not.
  const loggerInstance: FastifyBaseLogger = log.child({}, { level: "warn" });
  const app: FastifyInstance = Fastify({
    loggerInstance,
    bodyLimit: 4096,
    ajv: { customOptions: { removeAdditional: false, coerceTypes: false, useDefaults: false } },
  });
  const adminCheck = new AdminTokenCheck(adminToken);
  app.setErrorHandler((error: FastifyError, _request, reply) => {
    if (error instanceof ClusterActionError) {
      const [status, title] = STATUS_OF_CODE[error.code as ClusterActionError["code"]] ?? [422, "Invalid"];
      return replyProblem(reply, problemDetails(status, error.code, title, error.message));
    }
    const status = error.statusCode ?? 500;
    if (error.validation || (status >= 400 && status < 500)) {
      const code = status === 413 ? "payload_too_large" : status === 415 ? "unsupported_media_type" : null;
      if (code) return replyProblem(reply, problemDetails(status, code, "Refused", error.message));
      return replyProblem(reply, problemDetails(422, "invalid_request", "Invalid request", error.message));
    }
    log.error({ err: error }, "control call failed");
    return replyProblem(reply, problemDetails(500, "internal_error", "Internal error", "the call failed"));
  });
  app.setNotFoundHandler((request, reply) =>
    replyProblem(reply, problemDetails(404, "not_found", "Not found", `no control endpoint ${request.url}`)),
  );
  // Every call that changes the cluster or shows the dashboard's view needs the token, checked before
  // the body is read or validated: without it, nothing about the request is looked at.
  const adminOnly = async (request: FastifyRequest, reply: FastifyReply) => {
    if (!adminCheck.allows(request.headers.authorization)) {
      const detail = "send Authorization: Bearer <admin token>";
      return replyProblem(reply, problemDetails(401, "unauthorized", "Unauthorized", detail));
    }
  };
  app.get("/status", async () => supervisor.status());
  app.get("/metrics", async (_request, reply) => {
    reply.type(supervisor.registry.contentType);
    return supervisor.registry.metrics();
  });
  app.post("/restart", { onRequest: adminOnly }, async (_request, reply) => {
    void supervisor.rollingRestart();
    return reply.code(202).send({ status: "restarting" });
  });
  app.get("/cluster", { onRequest: adminOnly }, async (_request, reply) =>
    reply.header("cache-control", "no-store").send(await supervisor.view()),
  );
  app.post(
    "/cluster/scale",
    {
      onRequest: adminOnly,
      schema: {
        body: {
          type: "object",
          required: ["instances"],
          additionalProperties: false,
          properties: { instances: { type: "integer", minimum: 1, maximum: 256 } },
        },
      },
    },
    async (request, reply) => {
      const { instances } = request.body as { instances: number };
      return reply.code(202).send(supervisor.scaleTo(instances));
    },
  );
  app.post(
    "/cluster/instances/:id/drain",
    {
      onRequest: adminOnly,
      schema: {
        params: {
          type: "object",
          properties: { id: { type: "string", pattern: INSTANCE_ID } },
        },
      },
    },
    async (request, reply) => {
      const { id } = request.params as { id: string };
      supervisor.drainInstance(id);
      return reply.code(202).send({ id, state: "draining" });
    },
  );
  const url = await app.listen({ host, port });
  return { url, close: () => app.close() };
}
