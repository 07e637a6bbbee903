/**
 * The balancer's routing decision between its own `/_lb/` endpoints and the requests it proxies, and its
 * answers there: the shared admin check and the shared problem writer (the documented `type` URIs).
 * A real HTTP server stands for the front; the registry is a stand-in with no instance.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { AdminApi } from "../../../src/balancer/admin-api.js";
import { createLogger } from "../../../src/log/logger.js";
import { BackendNotFoundError, type BackendRegistry } from "../../../src/balancer/backend-registry.js";
import type { BalancerMetrics } from "../../../src/balancer/balancer-metrics.js";
import type { FrontRequest } from "../../../src/balancer/front.js";

const TOKEN = "lb-admin-token-0123456789";

describe("admin API routing", () => {
  let server: http.Server;
  let base: string;
  before(async () => {
    const registry = {
      upCount: 0,
      list: [],
      drain: (id: string) => {
        throw new BackendNotFoundError(id);
      },
    } as unknown as BackendRegistry;
    const admin = new AdminApi({
      registry,
      metrics: {} as BalancerMetrics,
      adminToken: TOKEN,
      retryAfterSeconds: 2,
      log: createLogger("silent", { component: "balancer" }),
    });
    server = http.createServer((req, res) => {
      if (!admin.tryHandle(req as http.IncomingMessage & FrontRequest, res)) res.end("proxied");
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  const problemOf = async (response: Response) => {
    assert.match(String(response.headers.get("content-type")), /^application\/problem\+json/);
    return (await response.json()) as { type: string; status: number; code: string };
  };

  it("leaves every path outside /_lb/ to the proxy, untouched", async () => {
    for (const path of ["/", "/v1/events", "/_lb", "/_lbx/health", "/x/_lb/health"]) {
      const response = await fetch(`${base}${path}`);
      assert.equal(await response.text(), "proxied", path);
    }
  });

  it("answers its own endpoints with problem+json in the documented type style", async () => {
    const health = await fetch(`${base}/_lb/health`);
    assert.equal(health.status, 503);
    assert.equal(health.headers.get("retry-after"), "2");
    assert.deepEqual(await problemOf(health), {
      type: "https://boxoffice.dev/problems/unavailable",
      title: "Service unavailable",
      status: 503,
      detail: "no instance is up",
      code: "unavailable",
    });
    const unknown = await problemOf(await fetch(`${base}/_lb/nope`));
    assert.equal(unknown.code, "not_found");
    const missing = await fetch(`${base}/_lb/backends/b9/drain`, {
      method: "POST",
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    assert.equal(missing.status, 404);
    const problem = await problemOf(missing);
    assert.equal(problem.code, "backend_not_found");
    assert.equal(problem.type, "https://boxoffice.dev/problems/backend-not-found");
  });

  it("needs the admin token for /_lb/backends, checked by the shared check", async () => {
    for (const authorization of [undefined, `Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}X`, TOKEN]) {
      const response = await fetch(`${base}/_lb/backends`, {
        headers: authorization === undefined ? {} : { authorization },
      });
      assert.equal(response.status, 401, String(authorization));
      const problem = await problemOf(response);
      assert.equal(problem.type, "https://boxoffice.dev/problems/unauthorized");
    }
    const listed = await fetch(`${base}/_lb/backends`, { headers: { authorization: `Bearer ${TOKEN}` } });
    assert.equal(listed.status, 200);
    assert.deepEqual(await listed.json(), { backends: [] });
  });
});
