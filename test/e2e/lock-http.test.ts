/**
 * The lock servers dying under real `boxoffice server` processes, over HTTP, on throwaway redis-server
 * processes (ports 16387–16389, never the shared Redis): requests get `503 unavailable` with
 * `Retry-After` (never a wrong sale), /ready says 503 while the lock is down, and sales resume when it is
 * back. Redlock over three servers keeps selling with one killed and answers 503 with two killed. Two
 * servers sharing the file lock sell two events to exactly their capacity, under either scope.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Event } from "../../src/domain/event.js";
import type { Order } from "../../src/domain/sale.js";
import { HttpClient, type HttpAnswer } from "../support/http-client.js";
import { RedisServer, startRedisServers } from "../support/redis-servers.js";
import { ServerProcess, stopAll } from "../support/server-process.js";

const http = new HttpClient(32);

async function createEvent(server: ServerProcess, capacity: number): Promise<Event> {
  const created = await http.call<Event>(server.url, "/v1/events", {
    admin: true,
    body: { name: "Lock servers dying", capacity, maxPerCustomer: 1000 },
  });
  assert.equal(created.status, 201, created.text);
  return created.body;
}

function buy(
  server: ServerProcess,
  eventId: string,
  n: number,
): Promise<HttpAnswer<Order & { code?: string }>> {
  return http.call(server.url, `/v1/events/${eventId}/orders`, {
    body: { customerId: `lock-http-${n % 50}`, quantity: 1 },
    headers: { "idempotency-key": `lock-http-${eventId}-${n}` },
  });
}

/** Every 503 carries Retry-After and says `unavailable`; the only other answer allowed is 201. */
function checkAnswer(answer: HttpAnswer<Order & { code?: string }>): void {
  if (answer.status === 201) return;
  assert.equal(answer.status, 503, answer.text);
  assert.ok(Number(answer.headers["retry-after"]) >= 1, "a 503 without Retry-After");
  assert.equal(answer.body.code, "unavailable");
}

/** Buys until one purchase goes through (bounded); returns its answer. */
async function buyUntilSold(server: ServerProcess, eventId: string, from: number): Promise<number> {
  for (let n = from; n < from + 100; n++) {
    const answer = await buy(server, eventId, n);
    checkAnswer(answer);
    if (answer.status === 201) return n;
    await sleep(100);
  }
  throw new Error("sales did not resume");
}

after(async () => {
  await stopAll();
  await http.close();
});

describe("a single Redis lock server killed in the middle of a burst (HTTP)", () => {
  const redis = new RedisServer(16387);
  const dir = mkdtempSync(join(tmpdir(), "boxoffice-lock-http-"));
  const servers: ServerProcess[] = [];

  before(async () => {
    await redis.start();
    // One after the other: two stores opening a fresh data directory at once can meet SQLITE_BUSY.
    for (const i of [0, 1]) {
      servers.push(
        await ServerProcess.start({
          dataDir: dir,
          instanceId: `lock-http-${i}`,
          args: ["--lock", redis.url, "--lock-wait-ms", "300", "--lock-lease-ms", "1000"],
        }),
      );
    }
  });
  after(async () => {
    await Promise.all(servers.map((server) => server.stop()));
    await redis.kill();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers 503 with Retry-After while Redis is down, never a wrong sale, and sells again after", async () => {
    const event = await createEvent(servers[0]!, 100_000);
    const answers: HttpAnswer<Order & { code?: string }>[] = [];
    let n = 0;
    let stop = false;
    const buyers = Array.from({ length: 8 }, async (_, b) => {
      while (!stop) answers.push(await buy(servers[b % servers.length]!, event.id, n++));
    });
    await sleep(400);
    await redis.kill();
    await sleep(300);
    const ready = await http.call(servers[0]!.url, "/ready");
    assert.equal(ready.status, 503, "/ready while the lock server is down");
    await sleep(400);
    await redis.start();
    await sleep(300);
    stop = true;
    await Promise.all(buyers);

    for (const answer of answers) checkAnswer(answer);
    const sold = answers.filter((answer) => answer.status === 201).length;
    const refused = answers.filter((answer) => answer.status === 503).length;
    assert.ok(refused > 0, "Redis was never missed");
    assert.ok(sold > 0);
    const counted = await http.call<Event>(servers[1]!.url, `/v1/events/${event.id}`);
    assert.equal(counted.body.sold, sold, "every 201 is a sale, and nothing else is");

    // Retrying a refused request with its key sells it at most once; fresh requests sell again.
    await buyUntilSold(servers[0]!, event.id, n + 1);
    await buyUntilSold(servers[1]!, event.id, n + 200);
    assert.equal((await http.call(servers[1]!.url, "/ready")).status, 200);
  });
});

describe("Redlock over three lock servers (HTTP)", () => {
  let redis: RedisServer[] = [];
  const dir = mkdtempSync(join(tmpdir(), "boxoffice-lock-http-redlock-"));
  let server: ServerProcess;

  before(async () => {
    redis = await startRedisServers(16387, 3);
    server = await ServerProcess.start({
      dataDir: dir,
      instanceId: "lock-http-redlock",
      args: ["--lock", redis.map((r) => r.url).join(","), "--lock-wait-ms", "300"],
    });
  });
  after(async () => {
    await server.stop();
    await Promise.all(redis.map((r) => r.kill()));
    rmSync(dir, { recursive: true, force: true });
  });

  it("sells with one server killed and answers 503 with Retry-After with two killed", async () => {
    const event = await createEvent(server, 100);
    assert.equal((await buy(server, event.id, 1)).status, 201);

    await redis[0]!.kill();
    assert.equal((await buy(server, event.id, 2)).status, 201);
    assert.equal((await http.call(server.url, "/ready")).status, 200);

    await redis[1]!.kill();
    const refused = await buy(server, event.id, 3);
    assert.equal(refused.status, 503, refused.text);
    checkAnswer(refused);
    assert.equal((await http.call(server.url, "/ready")).status, 503);
    assert.equal((await http.call<Event>(server.url, `/v1/events/${event.id}`)).body.sold, 2);
  });
});

for (const scope of ["event", "global"] as const) {
  describe(`two servers sharing the file lock, scope ${scope} (HTTP)`, () => {
    const dir = mkdtempSync(join(tmpdir(), "boxoffice-lock-http-file-"));
    const servers: ServerProcess[] = [];

    before(async () => {
      for (const i of [0, 1]) {
        servers.push(
          await ServerProcess.start({
            dataDir: dir,
            instanceId: `lock-file-${scope}-${i}`,
            args: ["--lock", "file", "--lock-scope", scope, "--lock-wait-ms", "10000"],
          }),
        );
      }
    });
    after(async () => {
      await Promise.all(servers.map((server) => server.stop()));
      rmSync(dir, { recursive: true, force: true });
    });

    it("sells two events to exactly their capacity, whichever server answers", async () => {
      const capacity = 60;
      const events = await Promise.all([
        createEvent(servers[0]!, capacity),
        createEvent(servers[1]!, capacity),
      ]);
      const answers = await Promise.all(
        Array.from({ length: capacity * 3 }, (_, n) =>
          buy(servers[n % 2]!, events[Math.floor(n / 2) % 2]!.id, n + 1_000_000),
        ),
      );
      for (const answer of answers) {
        if (answer.status !== 409) checkAnswer(answer);
        else assert.equal(answer.body.code, "sold_out");
      }
      for (const event of events) {
        const sold = answers.filter(
          (answer) => answer.status === 201 && answer.body.eventId === event.id,
        ).length;
        const counted = await http.call<Event>(servers[0]!.url, `/v1/events/${event.id}`);
        assert.equal(counted.body.sold, sold);
        assert.ok(sold <= capacity);
      }
      assert.equal(answers.filter((answer) => answer.status === 201).length, 2 * capacity);
    });
  });
}
