/**
 * Instances that die or are drained under load: retryable requests never fail, a POST without an
 * Idempotency-Key is never sent twice, and a drained instance leaves once idle without a failure.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool, request } from "undici";
import {
  spawnBackend,
  spawnBalancer,
  type SpawnedBackend,
  type SpawnedBalancer,
} from "../support/backend-fixture.js";

const TOKEN = "failover-token";
const auth = { authorization: `Bearer ${TOKEN}` };

type Kind = "get" | "keyed-post" | "plain-post";
interface Result {
  kind: Kind;
  requestId: string;
  status: number;
  code?: string;
  servedBy?: string;
  startedAtMs: number;
}

async function send(client: Pool, kind: Kind, requestId: string): Promise<Result> {
  const startedAtMs = Date.now();
  const headers: Record<string, string> = { "x-request-id": requestId };
  if (kind === "keyed-post") headers["idempotency-key"] = `key-${requestId}`;
  const response = await client.request({
    path: "/work",
    method: kind === "get" ? "GET" : "POST",
    headers: kind === "get" ? headers : { ...headers, "content-type": "application/json" },
    body: kind === "get" ? null : JSON.stringify({ customerId: "c-1", quantity: 1 }),
  });
  const text = await response.body.text();
  const result: Result = { kind, requestId, status: response.statusCode, startedAtMs };
  if (response.headers["x-served-by"] !== undefined)
    result.servedBy = String(response.headers["x-served-by"]);
  if (response.statusCode >= 400) result.code = (JSON.parse(text) as { code?: string }).code;
  return result;
}

/** Closed loops for `durationMs`: `mix` says how many workers send each kind of request. */
async function load(
  client: Pool,
  durationMs: number,
  mix: [Kind, number][],
  results: Result[] = [],
): Promise<Result[]> {
  const until = Date.now() + durationMs;
  let next = 0;
  await Promise.all(
    mix.flatMap(([kind, workers]) =>
      Array.from({ length: workers }, async () => {
        while (Date.now() < until) results.push(await send(client, kind, `${kind}-${next++}`));
      }),
    ),
  );
  return results;
}

async function metric(balancer: SpawnedBalancer, name: string): Promise<number> {
  const text = await (await request(`${balancer.url}/_lb/metrics`)).body.text();
  let total = 0;
  for (const line of text.split("\n"))
    if (line.startsWith(`${name}{`) || line.startsWith(`${name} `)) total += Number(line.split(" ").pop());
  return total;
}

describe("balancer: an instance killed under load", () => {
  let dir: string;
  let backends: SpawnedBackend[];
  let balancer: SpawnedBalancer;
  let client: Pool;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "boxoffice-lb-kill-"));
    // The instance to be killed is slow, so that when it dies several requests it has logged (received)
    // are still waiting for their answer there.
    backends = await Promise.all(
      ["a", "b", "c"].map((id) =>
        spawnBackend({ id, delayMs: id === "b" ? 200 : 15, logFile: join(dir, `${id}.log`) }),
      ),
    );
    balancer = await spawnBalancer(
      [...backends.flatMap((backend) => ["--backend", backend.url]), "--health-interval-ms", "200"],
      { BOXOFFICE_ADMIN_TOKEN: TOKEN },
    );
    client = new Pool(balancer.url, { connections: 20 });
  });

  after(async () => {
    await client?.close();
    await balancer?.stop();
    await Promise.all((backends ?? []).map((backend) => backend.kill()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it("fails no retryable request and never sends a POST without a key twice", async () => {
    const finished: Result[] = [];
    const running = load(
      client,
      4000,
      [
        ["get", 4],
        ["keyed-post", 4],
        ["plain-post", 12],
      ],
      finished,
    );
    await sleep(1000);
    // Kill it while it holds a POST with a key and one without (it logs each POST as it arrives, and
    // answers 200 ms later), so that the kill surely catches both in flight.
    const slowLog = join(dir, "b.log");
    let held: string[] = [];
    let heldPlain: string[] = [];
    for (let attempt = 0; attempt < 1000 && (held.length === 0 || heldPlain.length === 0); attempt++) {
      const done = new Set(finished.map((result) => result.requestId));
      const open = readFileSync(slowLog, "utf8")
        .split("\n")
        .map((line) => line.split(" ")[0]!)
        .filter((requestId) => requestId !== "" && !done.has(requestId));
      held = open.filter((requestId) => requestId.startsWith("keyed-post-"));
      heldPlain = open.filter((requestId) => requestId.startsWith("plain-post-"));
      if (held.length === 0 || heldPlain.length === 0) await sleep(10);
    }
    assert.ok(held.length > 0, "a POST with a key was in flight on the instance when it was killed");
    assert.ok(heldPlain.length > 0, "a POST without a key was in flight on the instance when it was killed");
    await backends[1]!.kill();
    const results = await running;

    const gets = results.filter((result) => result.kind === "get");
    const keyed = results.filter((result) => result.kind === "keyed-post");
    const plain = results.filter((result) => result.kind === "plain-post");
    console.log(
      `# ${results.length} requests; plain POSTs answered 502: ` +
        `${plain.filter((result) => result.status === 502).length}`,
    );
    // Each kind was sent (how many depends on the machine's speed, so no count is demanded).
    assert.ok(gets.length > 0 && keyed.length > 0 && plain.length > 0);
    // The kill caught POSTs without a key in flight (else this test would prove nothing about them).
    assert.ok(
      plain.some((result) => result.status === 502),
      "no POST without a key was in flight at the kill",
    );
    for (const result of gets) assert.equal(result.status, 200, JSON.stringify(result));
    for (const result of keyed) assert.equal(result.status, 201, JSON.stringify(result));
    for (const result of plain) {
      if (result.status === 201) continue;
      assert.equal(result.status, 502, JSON.stringify(result));
      assert.equal(result.code, "backend_failed");
    }

    // The instance logs (synchronously, before answering) every POST it received.
    const received = new Map<string, number>();
    for (const id of ["a", "b", "c"]) {
      const file = join(dir, `${id}.log`);
      if (!existsSync(file)) continue;
      for (const line of readFileSync(file, "utf8").split("\n")) {
        const requestId = line.split(" ")[0];
        if (requestId) received.set(requestId, (received.get(requestId) ?? 0) + 1);
      }
    }
    for (const result of plain)
      assert.ok((received.get(result.requestId) ?? 0) <= 1, `${result.requestId} sent twice`);
    for (const result of plain.filter((r) => r.status === 201))
      assert.equal(received.get(result.requestId), 1);
    // The kill caught a keyed POST in flight on the killed instance, and the balancer sent it again to
    // another instance, which answered it: received twice (once by the dead one), answered 201 once.
    const retriedKeyed = held.filter((requestId) => (received.get(requestId) ?? 0) >= 2);
    assert.ok(
      retriedKeyed.length > 0,
      `a keyed POST held by the killed instance was sent again elsewhere (held: ${held.join(", ")})`,
    );
    for (const requestId of retriedKeyed) {
      assert.equal(results.find((result) => result.requestId === requestId)?.status, 201, requestId);
    }
    assert.ok((await metric(balancer, "boxoffice_lb_backend_retries_total")) > 0, "no request was retried");
    const figures = (await (
      await request(`${balancer.url}/_lb/backends`, { headers: auth })
    ).body.json()) as {
      backends: { url: string; state: string }[];
    };
    assert.equal(figures.backends.find((backend) => backend.url === backends[1]!.url)?.state, "down");
  });
});

describe("balancer: an instance drained under load", () => {
  let backends: SpawnedBackend[];
  let balancer: SpawnedBalancer;
  let client: Pool;

  before(async () => {
    backends = await Promise.all(["a", "b"].map((id) => spawnBackend({ id, delayMs: 30 })));
    balancer = await spawnBalancer([...backends.flatMap((backend) => ["--backend", backend.url])], {
      BOXOFFICE_ADMIN_TOKEN: TOKEN,
    });
    client = new Pool(balancer.url, { connections: 16 });
  });

  after(async () => {
    await client?.close();
    await balancer?.stop();
    await Promise.all((backends ?? []).map((backend) => backend.kill()));
  });

  it("fails no request, sends the drained instance nothing new, and lets it leave once idle", async () => {
    const running = load(client, 2000, [
      ["get", 6],
      ["plain-post", 6],
    ]);
    await sleep(700);
    const drained = await request(`${balancer.url}/_lb/backends/b1/drain`, { method: "POST", headers: auth });
    assert.equal(drained.statusCode, 202);
    assert.equal(((await drained.body.json()) as { state: string }).state, "draining");
    const drainedAtMs = Date.now();
    let left = false;
    const until = Date.now() + 5000;
    while (!left && Date.now() < until) {
      const response = await request(`${balancer.url}/_lb/backends`, { headers: auth });
      const { backends: listed } = (await response.body.json()) as { backends: { id: string }[] };
      left = listed.every((backend) => backend.id !== "b1");
      if (!left) await sleep(20);
    }
    const results = await running;
    assert.ok(left, "the drained instance never left");
    for (const result of results)
      assert.ok(result.status === 200 || result.status === 201, JSON.stringify(result));
    const late = results.filter((result) => result.startedAtMs > drainedAtMs + 5 && result.servedBy === "a");
    assert.deepEqual(late, [], "requests started after the drain reached the drained instance");
    assert.ok(results.some((result) => result.startedAtMs > drainedAtMs + 5 && result.servedBy === "b"));
  });
});
