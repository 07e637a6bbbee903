/**
 * The dashboard's cluster calls: the balancer passes `/_lb/cluster…` on to the supervisor's control
 * server (a real one here, on a real port, with a stand-in supervisor that records what it is asked),
 * only behind the admin token, only the three calls it knows, and answers the control server's problems
 * as they are. Without the token nothing reaches the supervisor; malformed input changes nothing.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { Registry } from "prom-client";
import { AdminApi } from "../../../src/balancer/admin-api.js";
import type { BackendRegistry } from "../../../src/balancer/backend-registry.js";
import type { BalancerMetrics } from "../../../src/balancer/balancer-metrics.js";
import type { FrontRequest } from "../../../src/balancer/front.js";
import { startControlServer } from "../../../src/cluster/control-server.js";
import { ClusterActionError, type Supervisor } from "../../../src/cluster/supervisor.js";
import { createLogger } from "../../../src/log/logger.js";

const TOKEN = "cluster-admin-token-0123456789";
const WRONG_TOKENS = [
  undefined,
  `Bearer ${TOKEN}x`,
  `Bearer ${TOKEN.slice(0, -1)}X`,
  "Bearer ",
  TOKEN,
  `bearer ${TOKEN}`,
];
const log = createLogger("silent", { component: "balancer" });

async function balancerWith(
  clusterUrl: string | undefined,
): Promise<{ base: string; close(): Promise<void> }> {
  const admin = new AdminApi({
    registry: { upCount: 0, list: [] } as unknown as BackendRegistry,
    metrics: {} as BalancerMetrics,
    adminToken: TOKEN,
    retryAfterSeconds: 3,
    log,
    clusterUrl,
  });
  const server = http.createServer((req, res) => {
    if (!admin.tryHandle(req as http.IncomingMessage & FrontRequest, res)) res.end("proxied");
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    base: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    },
  };
}

async function problemOf(response: Response): Promise<{ status: number; code: string; detail: string }> {
  assert.match(String(response.headers.get("content-type")), /^application\/problem\+json/);
  return (await response.json()) as { status: number; code: string; detail: string };
}

describe("/_lb/cluster through the balancer", () => {
  const calls: string[] = [];
  let control: { url: string; close(): Promise<void> };
  let balancer: { base: string; close(): Promise<void> };

  before(async () => {
    // Only what the control server reads of a supervisor; every call is recorded.
    const supervisor = {
      status: () => ({ instances: [] }),
      registry: new Registry(),
      rollingRestart: async () => void calls.push("restart"),
      view: async () => {
        calls.push("view");
        return { instances: [{ id: "i-1", state: "ready" }] };
      },
      scaleTo: (count: number) => {
        calls.push(`scale ${count}`);
        if (count === 7) throw new ClusterActionError("invalid_transition", "a scaling action is under way");
        return { from: 2, to: count };
      },
      drainInstance: (id: string) => {
        calls.push(`drain ${id}`);
        if (id === "i-9") throw new ClusterActionError("instance_not_found", "no instance i-9");
      },
    } as unknown as Supervisor;
    control = await startControlServer(
      supervisor,
      TOKEN,
      createLogger("silent", { component: "supervisor" }),
    );
    balancer = await balancerWith(control.url);
  });
  after(async () => {
    await balancer.close();
    await control.close();
  });

  const send = (method: string, path: string, authorization: string | undefined, body?: string) =>
    fetch(`${balancer.base}${path}`, {
      method,
      headers: {
        ...(authorization === undefined ? {} : { authorization }),
        ...(body === undefined ? {} : { "content-type": "application/json" }),
      },
      body,
    });
  const CALLS: [string, string, string | undefined][] = [
    ["GET", "/_lb/cluster", undefined],
    ["POST", "/_lb/cluster/scale", '{"instances":3}'],
    ["POST", "/_lb/cluster/instances/i-2/drain", undefined],
  ];

  it("refuses every call without the token or with a wrong one, and the supervisor hears of none", async () => {
    for (const [method, path, body] of CALLS) {
      for (const authorization of WRONG_TOKENS) {
        const response = await send(method, path, authorization, body);
        assert.equal(response.status, 401, `${method} ${path} ${authorization}`);
        // The balancer's own refusal: the call went no further.
        assert.deepEqual(
          { ...(await problemOf(response)) },
          {
            type: "https://boxoffice.dev/problems/unauthorized",
            title: "Unauthorized",
            status: 401,
            detail: "missing or wrong admin token (Authorization: Bearer <token>)",
            code: "unauthorized",
          },
        );
      }
    }
    // The control server, reached directly, refuses the same way.
    for (const [method, path, body] of CALLS) {
      for (const authorization of WRONG_TOKENS) {
        const response = await fetch(`${control.url}${path.slice("/_lb".length)}`, {
          method,
          headers: {
            ...(authorization === undefined ? {} : { authorization }),
            ...(body === undefined ? {} : { "content-type": "application/json" }),
          },
          body,
        });
        assert.equal(response.status, 401, `direct ${method} ${path} ${authorization}`);
        assert.equal((await problemOf(response)).code, "unauthorized");
      }
    }
    assert.deepEqual(calls, []);
  });

  it("passes the view, a scale and a drain on with the token", async () => {
    const auth = `Bearer ${TOKEN}`;
    const view = await send("GET", "/_lb/cluster", auth);
    assert.equal(view.status, 200);
    assert.equal(view.headers.get("cache-control"), "no-store");
    assert.deepEqual(await view.json(), { instances: [{ id: "i-1", state: "ready" }] });
    const scale = await send("POST", "/_lb/cluster/scale", auth, '{"instances":3}');
    assert.equal(scale.status, 202);
    assert.deepEqual(await scale.json(), { from: 2, to: 3 });
    const drain = await send("POST", "/_lb/cluster/instances/i-2/drain", auth);
    assert.equal(drain.status, 202);
    assert.deepEqual(await drain.json(), { id: "i-2", state: "draining" });
    assert.deepEqual(calls.splice(0), ["view", "scale 3", "drain i-2"]);
  });

  it("refuses malformed input with problem+json and changes nothing", async () => {
    const auth = `Bearer ${TOKEN}`;
    const bodies = [
      '{"instances":"3"}',
      '{"instances":0}',
      '{"instances":1.5}',
      '{"instances":257}',
      '{"instances":3,"force":true}',
      "{}",
      "[3]",
      "3",
      "not json",
      '{"instances":3',
      '{"__proto__":{"instances":3}}',
      "",
    ];
    for (const body of bodies) {
      const response = await send("POST", "/_lb/cluster/scale", auth, body);
      assert.ok(response.status >= 400 && response.status < 500, `${body}: ${response.status}`);
      await problemOf(response);
    }
    const huge = await send(
      "POST",
      "/_lb/cluster/scale",
      auth,
      `{"instances":3,"x":"${"a".repeat(70_000)}"}`,
    );
    assert.ok(huge.status === 413 || huge.status === 422, String(huge.status));
    await problemOf(huge);
    for (const [type, status] of [
      ["text/plain", 422],
      ["application/xml", 415],
    ] as const) {
      const response = await fetch(`${balancer.base}/_lb/cluster/scale`, {
        method: "POST",
        headers: { authorization: auth, "content-type": type },
        body: "instances=3",
      });
      assert.equal(response.status, status, type);
      await problemOf(response);
    }
    for (const id of ["x1", "i-", "i-1234567", "I-1"]) {
      const response = await send("POST", `/_lb/cluster/instances/${id}/drain`, auth);
      assert.equal(response.status, 422, id);
      await problemOf(response);
    }
    for (const path of [
      "/_lb/cluster/instances/..%2F..%2Frestart/drain",
      "/_lb/cluster/instances/i-1/../../restart",
      "/_lb/cluster/restart",
      "/_lb/cluster/",
      "/_lb/cluster/status",
      "/_lb/clusterx",
    ]) {
      const response = await send("POST", path, auth);
      assert.equal(response.status, 404, path);
      await problemOf(response);
    }
    const wrongMethod = await send("DELETE", "/_lb/cluster", auth);
    assert.equal(wrongMethod.status, 405);
    await problemOf(wrongMethod);
    assert.deepEqual(calls, []);
  });

  it("answers the supervisor's refusals as they are", async () => {
    const auth = `Bearer ${TOKEN}`;
    const busy = await send("POST", "/_lb/cluster/scale", auth, '{"instances":7}');
    assert.equal(busy.status, 409);
    assert.equal((await problemOf(busy)).code, "invalid_transition");
    const missing = await send("POST", "/_lb/cluster/instances/i-9/drain", auth);
    assert.equal(missing.status, 404);
    assert.equal((await problemOf(missing)).code, "instance_not_found");
    assert.deepEqual(calls.splice(0), ["scale 7", "drain i-9"]);
  });

  it("answers 404 when no supervisor is attached, and 503 with Retry-After when it does not answer", async () => {
    const alone = await balancerWith(undefined);
    try {
      const unauthorized = await fetch(`${alone.base}/_lb/cluster`);
      assert.equal(unauthorized.status, 401);
      const response = await fetch(`${alone.base}/_lb/cluster`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(response.status, 404);
      assert.equal((await problemOf(response)).code, "not_found");
    } finally {
      await alone.close();
    }
    // A port that was just free: nothing listens there.
    const gone = http.createServer();
    await new Promise<void>((resolve) => gone.listen(0, "127.0.0.1", resolve));
    const port = (gone.address() as AddressInfo).port;
    await new Promise((resolve) => gone.close(resolve));
    const orphan = await balancerWith(`http://127.0.0.1:${port}`);
    try {
      const response = await fetch(`${orphan.base}/_lb/cluster`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(response.status, 503);
      assert.equal(response.headers.get("retry-after"), "3");
      assert.equal((await problemOf(response)).code, "unavailable");
    } finally {
      await orphan.close();
    }
  });
});
