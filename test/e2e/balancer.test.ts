/**
 * The balancer in its own process in front of test instances in theirs: routing, least connections
 * under uneven and even load, server-sent events, health checks and the `/_lb/` admin API.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool, request } from "undici";
import {
  spawnBackend,
  spawnBalancer,
  type SpawnedBackend,
  type SpawnedBalancer,
} from "../support/backend-fixture.js";

const TOKEN = "test-admin-token";
const auth = { authorization: `Bearer ${TOKEN}` };

interface BackendFigures {
  id: string;
  url: string;
  state: string;
  weight: number;
  active: number;
  requests: number;
}

async function listBackends(balancer: SpawnedBalancer): Promise<BackendFigures[]> {
  const response = await request(`${balancer.url}/_lb/backends`, { headers: auth });
  assert.equal(response.statusCode, 200);
  return ((await response.body.json()) as { backends: BackendFigures[] }).backends;
}

/** Runs `workers` closed loops of `send` for `durationMs`. */
async function closedLoop(workers: number, durationMs: number, send: (worker: number) => Promise<void>) {
  const until = Date.now() + durationMs;
  await Promise.all(
    Array.from({ length: workers }, async (_, worker) => {
      while (Date.now() < until) await send(worker);
    }),
  );
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(50);
  }
  assert.fail(`timed out waiting for ${what}`);
}

const VARIANTS = [
  { front: "node", upstreamClient: "raw" },
  { front: "node", upstreamClient: "undici" },
  { front: "raw", upstreamClient: "raw" },
];
for (const { front, upstreamClient } of VARIANTS) {
  describe(`balancer: routing and least connections (${front} front, ${upstreamClient} client)`, () => {
    let fast: SpawnedBackend;
    let slow: SpawnedBackend;
    let balancer: SpawnedBalancer;
    let client: Pool;

    before(async () => {
      [fast, slow] = await Promise.all([
        spawnBackend({ id: "fast", delayMs: 2 }),
        spawnBackend({ id: "slow", delayMs: 40 }),
      ]);
      balancer = await spawnBalancer(
        [
          "--backend",
          fast.url,
          "--backend",
          slow.url,
          "--health-interval-ms",
          "200",
          "--sse-max-age-ms",
          "400",
        ],
        { BOXOFFICE_ADMIN_TOKEN: TOKEN },
      );
      client = new Pool(balancer.url, { connections: 32 });
    });

    after(async () => {
      await client?.close();
      await balancer?.stop();
      await Promise.all([fast?.kill(), slow?.kill()]);
    });

    it("passes requests and bodies through, adds X-Forwarded-*, drops hop-by-hop headers", async () => {
      const body = randomBytes(200_000);
      const response = await client.request({
        path: "/echo",
        method: "POST",
        body,
        headers: { "x-forwarded-for": "203.0.113.9", "proxy-connection": "keep-alive", "x-custom": "1" },
      });
      assert.equal(response.statusCode, 200);
      assert.ok(["fast", "slow"].includes(String(response.headers["x-served-by"])));
      const seen = JSON.parse(String(response.headers["x-seen-headers"])) as Record<string, string>;
      assert.equal(seen["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
      assert.equal(seen["x-forwarded-proto"], "http");
      assert.equal(seen["x-custom"], "1");
      assert.equal(seen["proxy-connection"], undefined);
      assert.deepEqual(Buffer.from(await response.body.arrayBuffer()), body);
    });

    it("drops the headers a client's Connection names, and its X-Forwarded-Proto, keeps the rest", async () => {
      const url = new URL(balancer.url);
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(Number(url.port), url.hostname);
        let text = "";
        socket.on("data", (chunk: Buffer) => {
          text += chunk.toString("latin1");
          if (text.split("x-seen-headers").length === 3) {
            socket.destroy();
            resolve(text);
          }
        });
        socket.on("error", reject);
        // Once naming a header to drop, once not (the raw front's two ways of passing headers on).
        for (const connection of ["keep-alive, X-Drop-Me", "keep-alive"])
          socket.write(
            `GET /echo HTTP/1.1\r\nHost: x\r\nConnection: ${connection}\r\nX-Drop-Me: 1\r\n` +
              "X-Keep:   spaced  \r\nX-Forwarded-Proto: https\r\nContent-Length: 0\r\n\r\n",
          );
      });
      const [listed, plain] = [...answer.matchAll(/x-seen-headers: (.*)\r\n/gi)].map(
        (match) => JSON.parse(match[1]!) as Record<string, string>,
      );
      assert.equal(listed!["x-drop-me"], undefined);
      assert.equal(plain!["x-drop-me"], "1");
      for (const seen of [listed!, plain!]) {
        assert.equal(seen["x-keep"], "spaced");
        assert.equal(seen["x-forwarded-proto"], "http");
        assert.equal(seen.connection, undefined, "hop-by-hop: not passed on");
        assert.equal(seen["x-forwarded-for"], "127.0.0.1");
      }
    });

    it("keeps concurrent large bodies apart, byte for byte, both ways", async () => {
      const bodies = Array.from({ length: 8 }, () =>
        randomBytes(300_000 + Math.floor(Math.random() * 50_000)),
      );
      const echoed = await Promise.all(
        bodies.map(async (body, index) => {
          const response = await client.request({ path: "/echo", method: "POST", body });
          assert.equal(response.statusCode, 200);
          // Half the clients read late: their answers wait in buffers on the way while the others' flow.
          // (That a chunk handed on is never overwritten by a later read is proven where it can be
          // forced, in the raw client's unit test.)
          if (index % 2 === 0) await sleep(300);
          return Buffer.from(await response.body.arrayBuffer());
        }),
      );
      echoed.forEach((answer, index) => assert.ok(answer.equals(bodies[index]!), `body ${index} changed`));
    });

    it("sends a slow instance proportionally fewer requests", async () => {
      const servedBy = new Map<string, number>();
      await closedLoop(16, 1500, async () => {
        const response = await client.request({ path: "/work", method: "GET" });
        await response.body.dump();
        assert.equal(response.statusCode, 200);
        const id = String(response.headers["x-served-by"]);
        servedBy.set(id, (servedBy.get(id) ?? 0) + 1);
      });
      const fastCount = servedBy.get("fast") ?? 0;
      const slowCount = servedBy.get("slow") ?? 0;
      console.log(`# fast instance: ${fastCount} requests, slow instance: ${slowCount}`);
      // Round robin would split evenly; least connections keeps the in-flight counts level, so the
      // instance that answers 20 times faster takes many times more requests.
      assert.ok(fastCount > 3 * slowCount, `fast ${fastCount} vs slow ${slowCount}`);
    });

    it("passes server-sent events through, counts them as active, and ends them at their maximum age", async () => {
      const response = await client.request({
        path: "/sse",
        method: "GET",
        headers: { accept: "text/event-stream" },
      });
      assert.equal(response.statusCode, 200);
      assert.match(String(response.headers["content-type"]), /text\/event-stream/);
      const figures = await listBackends(balancer);
      assert.equal(
        figures.find((backend) => backend.id === (response.headers["x-served-by"] === "fast" ? "b1" : "b2"))
          ?.active,
        1,
      );
      let text = "";
      for await (const chunk of response.body) text += (chunk as Buffer).toString("utf8");
      // The stream ended by itself (sseMaxAgeMs), cleanly, after several events.
      assert.ok((text.match(/^data: /gm) ?? []).length >= 2, text);
      await waitFor("the stream to be released", async () =>
        (await listBackends(balancer)).every((backend) => backend.active === 0),
      );
    });

    it("takes an instance whose /ready fails out of rotation and brings it back", async () => {
      await request(`${slow.url}/fixture/ready`, { method: "POST", body: JSON.stringify({ ready: false }) });
      await waitFor("the slow instance to go down", async () =>
        (await listBackends(balancer)).some(
          (backend) => backend.url === slow.url && backend.state === "down",
        ),
      );
      for (let i = 0; i < 20; i++) {
        const response = await client.request({ path: "/", method: "GET" });
        await response.body.dump();
        assert.equal(response.headers["x-served-by"], "fast");
      }
      await request(`${slow.url}/fixture/ready`, { method: "POST", body: JSON.stringify({ ready: true }) });
      await waitFor("the slow instance to come back", async () =>
        (await listBackends(balancer)).every((backend) => backend.state === "up"),
      );
    });
  });
}

describe("balancer: even load and the admin API", () => {
  let backends: SpawnedBackend[];
  let balancer: SpawnedBalancer;
  let client: Pool;

  before(async () => {
    backends = await Promise.all([
      spawnBackend({ id: "a", delayMs: 20 }),
      spawnBackend({ id: "b", delayMs: 20 }),
      spawnBackend({ id: "c", delayMs: 20 }),
    ]);
    balancer = await spawnBalancer(
      [
        ...["--backend", backends[0]!.url, "--backend", backends[1]!.url],
        ...["--health-interval-ms", "200", "--slow-start-ms", "0"],
      ],
      { BOXOFFICE_ADMIN_TOKEN: TOKEN },
    );
    client = new Pool(balancer.url, { connections: 16 });
  });

  after(async () => {
    await client?.close();
    await balancer?.stop();
    await Promise.all((backends ?? []).map((backend) => backend.kill()));
  });

  it("keeps equal instances' in-flight counts within one of each other under steady load", async () => {
    // Warm up first: JIT compilation in a cold instance makes it briefly slower than its twin, and a
    // slower instance rightly holds more in-flight requests.
    await closedLoop(10, 700, async () => {
      const response = await client.request({ path: "/work", method: "GET" });
      await response.body.dump();
    });
    let samples = 0;
    let within = 0;
    let withinTwo = 0;
    let sampling = true;
    const sampler = (async () => {
      const admin = new Pool(balancer.url, { connections: 1 });
      while (sampling) {
        const [a, b] = await listBackendsVia(admin);
        if (a!.active + b!.active >= 4) {
          samples++;
          if (Math.abs(a!.active - b!.active) <= 1) within++;
          if (Math.abs(a!.active - b!.active) <= 2) withinTwo++;
        }
        await sleep(10);
      }
      await admin.close();
    })();
    await closedLoop(10, 2000, async () => {
      const response = await client.request({ path: "/work", method: "GET" });
      await response.body.dump();
    });
    sampling = false;
    await sampler;
    console.log(`# ${within} of ${samples} samples within one, ${withinTwo} within two`);
    assert.ok(samples >= 20, `only ${samples} samples under load`);
    // A sample can fall between two responses of one instance finishing in the same tick and the
    // clients' next requests arriving, so "within one" is asked of nearly all samples, not all.
    // Random placement of 9 or 10 requests over 2 instances is within one in about a third of samples.
    assert.ok(within >= 0.75 * samples, `${within} of ${samples} samples within one`);
    assert.ok(withinTwo >= 0.9 * samples, `${withinTwo} of ${samples} samples within two`);
  });

  it("asks for the admin token", async () => {
    const response = await request(`${balancer.url}/_lb/backends`);
    assert.equal(response.statusCode, 401);
    assert.equal(((await response.body.json()) as { code: string }).code, "unauthorized");
    const wrong = await request(`${balancer.url}/_lb/backends`, {
      headers: { authorization: "Bearer nope" },
    });
    await wrong.body.dump();
    assert.equal(wrong.statusCode, 401);
  });

  it("adds, re-weights, drains and removes instances at run time", async () => {
    const added = await request(`${balancer.url}/_lb/backends`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ url: backends[2]!.url, weight: 2 }),
    });
    assert.equal(added.statusCode, 201);
    const backend = (await added.body.json()) as BackendFigures;
    assert.equal(added.headers.location, `/_lb/backends/${backend.id}`);
    assert.equal(backend.weight, 2);

    const twice = await request(`${balancer.url}/_lb/backends`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ url: backends[2]!.url }),
    });
    assert.equal(twice.statusCode, 409);
    assert.equal(((await twice.body.json()) as { code: string }).code, "backend_exists");
    const unknownField = await request(`${balancer.url}/_lb/backends`, {
      method: "POST",
      headers: auth,
      body: JSON.stringify({ url: "http://127.0.0.1:1", color: "red" }),
    });
    assert.equal(unknownField.statusCode, 422);
    await unknownField.body.dump();

    const servedBy = new Set<string>();
    for (let i = 0; i < 30; i++) {
      const response = await client.request({ path: "/", method: "GET" });
      await response.body.dump();
      servedBy.add(String(response.headers["x-served-by"]));
    }
    assert.ok(servedBy.has("c"), "the added instance takes traffic");

    const reweighted = await request(`${balancer.url}/_lb/backends/${backend.id}`, {
      method: "PATCH",
      headers: auth,
      body: JSON.stringify({ weight: 5 }),
    });
    assert.equal(reweighted.statusCode, 200);
    assert.equal(((await reweighted.body.json()) as BackendFigures).weight, 5);

    const drained = await request(`${balancer.url}/_lb/backends/${backend.id}/drain`, {
      method: "POST",
      headers: auth,
    });
    assert.equal(drained.statusCode, 202);
    await drained.body.dump();
    await waitFor("the drained instance to leave", async () =>
      (await listBackends(balancer)).every((figures) => figures.id !== backend.id),
    );

    const missing = await request(`${balancer.url}/_lb/backends/${backend.id}`, {
      method: "DELETE",
      headers: auth,
    });
    assert.equal(missing.statusCode, 404);
    assert.equal(((await missing.body.json()) as { code: string }).code, "backend_not_found");

    const [first] = await listBackends(balancer);
    const removed = await request(`${balancer.url}/_lb/backends/${first!.id}`, {
      method: "DELETE",
      headers: auth,
    });
    assert.equal(removed.statusCode, 204);
    await removed.body.dump();
    assert.equal((await listBackends(balancer)).length, 1);
  });

  it("serves /_lb/health and /_lb/metrics", async () => {
    const health = await request(`${balancer.url}/_lb/health`);
    assert.equal(health.statusCode, 200);
    await health.body.dump();
    const metrics = await request(`${balancer.url}/_lb/metrics`);
    assert.equal(metrics.statusCode, 200);
    const text = await metrics.body.text();
    for (const name of [
      "boxoffice_lb_backend_active",
      "boxoffice_lb_backend_requests_total",
      "boxoffice_lb_backend_retries_total",
      "boxoffice_lb_backend_ejections_total",
      "boxoffice_lb_backend_response_seconds_bucket",
      "boxoffice_lb_queue_length",
      "boxoffice_lb_rejected_total",
    ])
      assert.match(text, new RegExp(`^# TYPE ${name.replace(/_bucket$/, "")} `, "m"), name);
  });
});

async function listBackendsVia(admin: Pool): Promise<BackendFigures[]> {
  const response = await admin.request({ path: "/_lb/backends", method: "GET", headers: auth });
  return ((await response.body.json()) as { backends: BackendFigures[] }).backends;
}

/** One request on a connection of its own (L4 mode balances connections). */
function getOnNewConnection(url: string): Promise<{ status: number; servedBy: string; retryAfter?: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { agent: false }, (res) => {
      res.resume();
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          servedBy: String(res.headers["x-served-by"]),
          ...(res.headers["retry-after"] === undefined
            ? {}
            : { retryAfter: String(res.headers["retry-after"]) }),
        }),
      );
    });
    req.on("error", reject);
  });
}

describe("balancer: L4 mode", () => {
  let backends: SpawnedBackend[];
  let balancer: SpawnedBalancer;

  before(async () => {
    backends = await Promise.all(["a", "b"].map((id) => spawnBackend({ id })));
    balancer = await spawnBalancer([
      ...["--mode", "tcp", "--health-interval-ms", "200"],
      ...backends.flatMap((backend) => ["--backend", backend.url]),
    ]);
  });

  after(async () => {
    await balancer?.stop();
    await Promise.all((backends ?? []).map((backend) => backend.kill()));
  });

  it("spreads connections, moves off a killed instance, and answers 503 when none is left", async () => {
    const servedBy = new Set<string>();
    for (let i = 0; i < 10; i++) servedBy.add((await getOnNewConnection(`${balancer.url}/`)).servedBy);
    assert.deepEqual([...servedBy].sort(), ["a", "b"]);
    await backends[0]!.kill();
    for (let i = 0; i < 10; i++) {
      const answer = await getOnNewConnection(`${balancer.url}/`);
      assert.equal(answer.status, 200);
      assert.equal(answer.servedBy, "b");
    }
    await backends[1]!.kill();
    // The first connection after the kill finds b refused and ejects it; then none is up.
    await getOnNewConnection(`${balancer.url}/`).catch(() => undefined);
    const answer = await getOnNewConnection(`${balancer.url}/`);
    assert.equal(answer.status, 503);
    assert.equal(answer.retryAfter, "1");
  });
});
