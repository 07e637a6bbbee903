/**
 * The operations surface on a port of its own: with `--admin-port`, the instance serves the admin calls
 * and /metrics only there (the public port answers 404 for them) and the balancer serves `/_lb/` only
 * there; without it, everything stays on the one port. The supervisor of `boxoffice up` serves its
 * metrics on the port it is told (`--metrics-port`).
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { freePort, spawnBalancer, type SpawnedBalancer } from "../support/backend-fixture.js";
import { ClusterProcess, stopAllClusters } from "../support/cluster-process.js";
import { E2E_ADMIN_TOKEN, ServerProcess, stopAll } from "../support/server-process.js";

const admin = { authorization: `Bearer ${E2E_ADMIN_TOKEN}` };
const dirs: string[] = [];

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "boxoffice-admin-port-"));
  dirs.push(dir);
  return dir;
}

async function statusOf(url: string, init: Parameters<typeof request>[1] = {}): Promise<number> {
  const response = await request(url, init);
  await response.body.dump();
  return response.statusCode;
}

const newEvent = () => ({
  method: "POST" as const,
  headers: { ...admin, "content-type": "application/json" },
  body: JSON.stringify({ name: "Admin port", capacity: 10 }),
});

after(async () => {
  await stopAll();
  await stopAllClusters();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe("instance --admin-port", () => {
  let instance: ServerProcess;
  let adminUrl: string;

  before(async () => {
    instance = await ServerProcess.start({
      dataDir: dataDir(),
      instanceId: "ops",
      args: ["--admin-port", "0"],
    });
    const ready = instance.output
      .flatMap((chunk) => chunk.split("\n"))
      .find((line) => line.includes("boxoffice server ready"));
    adminUrl = (JSON.parse(ready!) as { adminUrl: string }).adminUrl;
    assert.match(adminUrl, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.notEqual(adminUrl, instance.url);
  });

  it("answers 404 on the public port for /metrics and the admin calls, serves the buyers' routes", async () => {
    assert.equal(await statusOf(`${instance.url}/metrics`), 404);
    assert.equal(await statusOf(`${instance.url}/v1/events`, newEvent()), 404);
    assert.equal(await statusOf(`${instance.url}/v1/events`), 200);
    assert.equal(await statusOf(`${instance.url}/health`), 200);
    assert.equal(await statusOf(`${instance.url}/ready`), 200);
  });

  it("serves /metrics and the admin calls on the admin port, and nothing for buyers", async () => {
    const metrics = await request(`${adminUrl}/metrics`);
    assert.equal(metrics.statusCode, 200);
    assert.match(await metrics.body.text(), /boxoffice_/);
    assert.equal(await statusOf(`${adminUrl}/v1/events`, newEvent()), 201);
    // Still the admin token's to allow.
    assert.equal(
      await statusOf(`${adminUrl}/v1/events`, {
        ...newEvent(),
        headers: { "content-type": "application/json" },
      }),
      401,
    );
    assert.equal(await statusOf(`${adminUrl}/health`), 200);
    assert.equal(await statusOf(`${adminUrl}/v1/events`), 404);
    // The event made on the admin port is the one store's: buyers see it on the public port.
    const events = await request(`${instance.url}/v1/events`);
    const listed = (await events.body.json()) as { events?: { name: string }[] } | { name: string }[];
    assert.match(JSON.stringify(listed), /Admin port/);
  });
});

describe("balancer --admin-port", () => {
  let balancer: SpawnedBalancer;
  let adminUrl: string;

  before(async () => {
    balancer = await spawnBalancer(["--admin-port", "0"], { BOXOFFICE_ADMIN_TOKEN: E2E_ADMIN_TOKEN });
    const port = /\/_lb\/ on http:\/\/127\.0\.0\.1:(\d+) only/.exec(balancer.log())?.[1];
    assert.ok(port, balancer.log());
    adminUrl = `http://127.0.0.1:${port}`;
  });

  after(async () => {
    await balancer?.stop();
  });

  it("answers 404 for /_lb/ on the public port", async () => {
    for (const path of ["/_lb/metrics", "/_lb/health", "/_lb/backends"])
      assert.equal(await statusOf(`${balancer.url}${path}`, { headers: admin }), 404, path);
  });

  it("serves /_lb/ on the admin port, and nothing else", async () => {
    const metrics = await request(`${adminUrl}/_lb/metrics`);
    assert.equal(metrics.statusCode, 200);
    assert.match(await metrics.body.text(), /boxoffice_lb_/);
    assert.equal(await statusOf(`${adminUrl}/_lb/backends`, { headers: admin }), 200);
    assert.equal(await statusOf(`${adminUrl}/_lb/backends`), 401);
    assert.equal(await statusOf(`${adminUrl}/v1/events`), 404);
  });
});

describe("boxoffice up --metrics-port", () => {
  it("serves the supervisor's metrics on the port given", async () => {
    const metricsPort = await freePort();
    const cluster = await ClusterProcess.start(dataDir(), await freePort(), [
      "--instances",
      "1",
      "--metrics-port",
      String(metricsPort),
    ]);
    const metrics = await request(`http://127.0.0.1:${metricsPort}/metrics`);
    assert.equal(metrics.statusCode, 200);
    assert.match(await metrics.body.text(), /boxoffice_cluster_instances 1/);
    await cluster.stop();
  });
});
