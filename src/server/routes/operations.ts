/**
 * Operations: liveness, readiness (the store and the lock answer) and Prometheus metrics.
 */
import type { LockProvider } from "../../lock/lock-provider.js";
import type { Store } from "../../store/store.js";
import { answersWithin } from "../answers-within.js";
import { problemOf, sendProblem } from "../problem.js";
import { unavailable } from "../problem-responses.js";
import type { RouteSpec } from "../route-spec.js";
import { healthSchema, readySchema } from "../schemas.js";
import type { ServerMetrics } from "../server-metrics.js";

export interface OperationRoutes {
  health: RouteSpec;
  ready: RouteSpec;
  metrics: RouteSpec;
}

export function operationRoutes(deps: {
  store: Store;
  lock: LockProvider;
  metrics: ServerMetrics;
  /** Longest a /ready probe waits for the store or the lock. */
  readyTimeoutMs: number;
}): OperationRoutes {
  const { store, lock, metrics, readyTimeoutMs } = deps;
  return {
    health: {
      method: "GET",
      url: "/health",
      operationId: "health",
      summary: "200 while the process runs",
      tag: "operations",
      schema: {},
      responses: { 200: { description: "Alive", schema: healthSchema } },
      handler: async () => ({ status: "ok" }),
    },
    ready: {
      method: "GET",
      url: "/ready",
      operationId: "ready",
      summary: "200 when the store and the lock service answer, else 503",
      tag: "operations",
      schema: {},
      responses: { 200: { description: "Ready", schema: readySchema }, 503: unavailable },
      handler: async (_request, reply) => {
        const [storeOk, lockOk] = await Promise.all([
          answersWithin(() => store.ping(), readyTimeoutMs),
          answersWithin(() => lock.ping(), readyTimeoutMs),
        ]);
        if (storeOk && lockOk) return { status: "ok", store: "ok", lock: "ok" };
        const down = [storeOk ? null : "store", lockOk ? null : `lock (${lock.kind})`].filter(Boolean);
        return sendProblem(reply, problemOf("unavailable", `not answering: ${down.join(", ")}`));
      },
    },
    metrics: {
      method: "GET",
      url: "/metrics",
      operationId: "metrics",
      summary: "Prometheus metrics of this instance",
      tag: "operations",
      operatorOnly: true,
      schema: {},
      responses: { 200: { description: "Prometheus text format", contentType: "text/plain" } },
      handler: async (_request, reply) => {
        const text = await metrics.registry.metrics();
        return reply.type(metrics.registry.contentType).send(text);
      },
    },
  };
}
