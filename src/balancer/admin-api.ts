/**
 * The balancer's own endpoints under `/_lb/` (docs/balancer.md): health, metrics, and the admin calls
 * that list, add, re-weight, drain and remove instances at run time; and, when the balancer was told
 * the supervisor's address (`--cluster-url`, set by `boxoffice up`), the cluster calls the dashboard
 * makes under `/_lb/cluster`, passed on to the supervisor behind the same admin token.
 */
import type { Logger } from "../log/logger.js";
import type { FrontRequest, FrontResponse } from "./front.js";
import { checkWeight, parseBackendSpec } from "../config/balancer-config.js";
import { BoxofficeError } from "../domain/errors.js";
import { AdminTokenCheck } from "../http/admin-token-check.js";
import { BackendExistsError, BackendNotFoundError, type BackendRegistry } from "./backend-registry.js";
import type { BalancerMetrics } from "./balancer-metrics.js";
import { sendProblem as writeBalancerProblem } from "./balancer-errors.js";

/** The balancer's problem writer, its byte count (for the access log) not needed here. */
function sendProblem(...args: Parameters<typeof writeBalancerProblem>): void {
  writeBalancerProblem(...args);
}

const MAX_ADMIN_BODY_BYTES = 65_536;

const ADMIN_PREFIX = "/_lb/";

export interface AdminContext {
  registry: BackendRegistry;
  metrics: BalancerMetrics;
  /** No token: the admin calls answer 401. */
  adminToken: string | undefined;
  retryAfterSeconds: number;
  /** Where a failing admin call is logged. */
  log: Logger;
  /** The supervisor's control address; none: `/_lb/cluster` answers 404. */
  clusterUrl?: string | undefined;
}

interface AdminState {
  registry: BackendRegistry;
  metrics: BalancerMetrics;
  adminCheck: AdminTokenCheck;
  retryAfterSeconds: number;
  clusterUrl: string | undefined;
}

/** The cluster calls passed on to the supervisor, by method: nothing else under /_lb/cluster is. */
const CLUSTER_CALLS: readonly { method: string; path: RegExp }[] = [
  { method: "GET", path: /^\/_lb\/cluster$/ },
  { method: "POST", path: /^\/_lb\/cluster\/scale$/ },
  { method: "POST", path: /^\/_lb\/cluster\/instances\/[A-Za-z0-9_-]{1,64}\/drain$/ },
];
const CLUSTER_TIMEOUT_MS = 5000;

function sendJson(
  res: FrontResponse,
  status: number,
  value: unknown,
  headers: Record<string, string> = {},
): void {
  const body = JSON.stringify(value);
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    "content-length": Buffer.byteLength(body),
    ...headers,
  });
  res.end(body);
}

class InvalidRequestError extends BoxofficeError {
  constructor(detail: string) {
    super("invalid_request", detail);
  }
}

async function readBody(req: FrontRequest): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_ADMIN_BODY_BYTES) throw new InvalidRequestError("body over 64 KiB");
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

async function readJson(req: FrontRequest): Promise<Record<string, unknown>> {
  const body = await readBody(req);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString("utf8"));
  } catch {
    throw new InvalidRequestError("body is not JSON");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    throw new InvalidRequestError("body must be a JSON object");
  return parsed as Record<string, unknown>;
}

function onlyFields(body: Record<string, unknown>, allowed: readonly string[]): void {
  const unknown = Object.keys(body).filter((key) => !allowed.includes(key));
  if (unknown.length > 0) throw new InvalidRequestError(`unknown fields: ${unknown.join(", ")}`);
}

/**
 * The routing decision between the balancer's own endpoints and the requests it proxies: every request
 * passes through `tryHandle` first, which costs one prefix test when the request is not for `/_lb/`.
 */
export class AdminApi {
  readonly #state: AdminState;
  readonly #log: Logger;

  constructor(context: AdminContext) {
    this.#log = context.log;
    this.#state = {
      registry: context.registry,
      metrics: context.metrics,
      adminCheck: new AdminTokenCheck(context.adminToken),
      retryAfterSeconds: context.retryAfterSeconds,
      clusterUrl: context.clusterUrl,
    };
  }

  /** Whether `req` is for the balancer's own endpoints (`/_lb/...`). */
  static isAdminPath(req: FrontRequest): boolean {
    return (req.url ?? "/").startsWith(ADMIN_PREFIX);
  }

  /** Answers `req` and returns true when it is for `/_lb/`; returns false, untouched, otherwise. */
  tryHandle(req: FrontRequest, res: FrontResponse): boolean {
    if (!AdminApi.isAdminPath(req)) return false;
    handleAdmin(this.#state, req, res).catch((error: unknown) => {
      this.#log.error({ err: error }, "admin call failed");
      if (!res.headersSent) sendProblem(res, 500, "invalid_request", "internal error");
      else res.destroy();
    });
    return true;
  }
}

/**
 * Passes a dashboard's cluster call on to the supervisor (its token already checked here; the supervisor
 * checks it again) and its answer back: status, JSON or problem+json body. The supervisor down: 503.
 */
async function passToCluster(
  context: AdminState,
  req: FrontRequest,
  res: FrontResponse,
  path: string,
  method: string,
): Promise<void> {
  if (context.clusterUrl === undefined)
    return sendProblem(res, 404, "not_found", "no supervisor is attached to this balancer (--cluster-url)");
  const calls = CLUSTER_CALLS.filter((call) => call.path.test(path));
  if (calls.length === 0) return sendProblem(res, 404, "not_found", `no balancer endpoint ${path}`);
  if (!calls.some((call) => call.method === method))
    return sendProblem(res, 405, "method_not_allowed", `${calls.map((c) => c.method).join(" or ")} only`);
  const body = method === "GET" ? undefined : await readBody(req);
  const contentType = req.headers["content-type"];
  let answer: Response;
  let text: Buffer;
  try {
    answer = await fetch(`${context.clusterUrl}${path.slice("/_lb".length)}`, {
      method,
      headers: {
        authorization: req.headers.authorization!,
        ...(body === undefined || body.length === 0
          ? {}
          : { "content-type": contentType ?? "application/json" }),
      },
      body: body === undefined || body.length === 0 ? undefined : body,
      signal: AbortSignal.timeout(CLUSTER_TIMEOUT_MS),
    });
    text = Buffer.from(await answer.arrayBuffer());
  } catch {
    return sendProblem(res, 503, "unavailable", "the supervisor does not answer", {
      "retry-after": String(context.retryAfterSeconds),
    });
  }
  res.writeHead(answer.status, {
    "content-type": answer.headers.get("content-type") ?? "application/json; charset=utf-8",
    "content-length": text.length,
    "cache-control": "no-store",
  });
  res.end(text);
}

/** Answers one `/_lb/...` request. */
async function handleAdmin(context: AdminState, req: FrontRequest, res: FrontResponse): Promise<void> {
  const { registry } = context;
  const path = (req.url ?? "/").split("?")[0]!;
  const method = req.method ?? "GET";
  try {
    if (path === "/_lb/health") {
      if (method !== "GET" && method !== "HEAD")
        return sendProblem(res, 405, "method_not_allowed", "GET only");
      const up = registry.upCount;
      if (up > 0) return sendJson(res, 200, { status: "ok", up });
      return sendProblem(res, 503, "unavailable", "no instance is up", {
        "retry-after": String(context.retryAfterSeconds),
      });
    }
    if (path === "/_lb/metrics") {
      const text = await context.metrics.text();
      res.writeHead(200, { "content-type": context.metrics.contentType });
      res.end(text);
      return;
    }
    const cluster = path === "/_lb/cluster" || path.startsWith("/_lb/cluster/");
    if (!cluster && path !== "/_lb/backends" && !path.startsWith("/_lb/backends/"))
      return sendProblem(res, 404, "not_found", `no balancer endpoint ${path}`);
    if (!context.adminCheck.allows(req.headers.authorization))
      return sendProblem(
        res,
        401,
        "unauthorized",
        "missing or wrong admin token (Authorization: Bearer <token>)",
      );
    if (cluster) return await passToCluster(context, req, res, path, method);

    if (path === "/_lb/backends") {
      if (method === "GET") return sendJson(res, 200, { backends: registry.list.map((b) => b.view()) });
      if (method === "POST") {
        const body = await readJson(req);
        onlyFields(body, ["url", "weight"]);
        if (typeof body.url !== "string") throw new InvalidRequestError("url must be a string");
        const spec = parseBackendSpec(
          body.url,
          body.weight === undefined ? undefined : checkWeight(body.weight),
        );
        const backend = registry.add(spec, true);
        return sendJson(res, 201, backend.view(), { location: `/_lb/backends/${backend.id}` });
      }
      return sendProblem(res, 405, "method_not_allowed", "GET or POST");
    }
    const rest = path.slice("/_lb/backends/".length).split("/");
    const id = decodeURIComponent(rest[0]!);
    if (rest.length === 2 && rest[1] === "drain" && method === "POST") {
      return sendJson(res, 202, registry.drain(id).view());
    }
    if (rest.length === 1 && method === "DELETE") {
      registry.remove(id);
      res.writeHead(204);
      res.end();
      return;
    }
    if (rest.length === 1 && method === "PATCH") {
      const body = await readJson(req);
      onlyFields(body, ["weight"]);
      return sendJson(res, 200, registry.setWeight(id, checkWeight(body.weight)).view());
    }
    if (rest.length === 1 && method === "GET") return sendJson(res, 200, registry.get(id).view());
    return sendProblem(res, 405, "method_not_allowed", `${method} ${path} is not an endpoint`);
  } catch (error) {
    if (error instanceof BackendNotFoundError)
      return sendProblem(res, 404, "backend_not_found", error.message);
    if (error instanceof BackendExistsError) return sendProblem(res, 409, "backend_exists", error.message);
    if (error instanceof BoxofficeError) return sendProblem(res, 422, "invalid_request", error.message);
    throw error;
  }
}
