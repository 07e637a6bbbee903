/**
 * The supervisor's control endpoint, on loopback unless `--metrics-host` says otherwise, on a known port
 * (`--metrics-port`, default 9180): `GET /status` (JSON, read by `boxoffice status`), `GET /metrics`
 * (Prometheus) and `POST /restart` (rolling restart, as `boxoffice restart` or SIGHUP). Its address is
 * written to <data dir>/cluster.json so the CLI can find it.
 */
import Fastify, { type FastifyBaseLogger, type FastifyInstance } from "fastify";
import { AdminTokenCheck } from "../http/admin-token-check.js";
import { problemDetails, replyProblem } from "../http/problem-details.js";
import type { Logger } from "../log/logger.js";
import type { Supervisor } from "./supervisor.js";

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
  const app: FastifyInstance = Fastify({ loggerInstance });
  const adminCheck = new AdminTokenCheck(adminToken);
  app.get("/status", async () => supervisor.status());
  app.get("/metrics", async (_request, reply) => {
    reply.type(supervisor.registry.contentType);
    return supervisor.registry.metrics();
  });
  app.post("/restart", async (request, reply) => {
    if (!adminCheck.allows(request.headers.authorization)) {
      const detail = "send Authorization: Bearer <admin token>";
      return replyProblem(reply, problemDetails(401, "unauthorized", "Unauthorized", detail));
    }
    void supervisor.rollingRestart();
    return reply.code(202).send({ status: "restarting" });
  });
  const url = await app.listen({ host, port });
  return { url, close: () => app.close() };
}
