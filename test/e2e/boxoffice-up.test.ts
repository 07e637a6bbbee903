/**
 * `boxoffice up` as a user runs it: a supervisor process that starts the balancer and the instances as
 * separate processes. Purchases through the balancer spread over every instance; an instance SIGKILLed
 * while tickets are still on sale and keyed purchases are open on it is restarted and rejoins, and the
 * independent verifier (src/rehearsal/verifier.ts) finds every sale exactly once; a rolling restart and an
 * autoscaling cycle under a load of purchases and reads fail no request; SIGTERM leaves no process behind,
 * and so does SIGKILL (the children stop when their IPC channel to the supervisor closes).
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createServer } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Event } from "../../src/domain/event.js";
import type { Order } from "../../src/domain/sale.js";
import type { ClientRecord } from "../../src/rehearsal/client-log.js";
import { verify } from "../../src/rehearsal/verifier.js";
import { freePort } from "../support/backend-fixture.js";
import { ClusterProcess, stopAllClusters } from "../support/cluster-process.js";
import { freezeWithRequestsOpen } from "../support/freeze-with-requests-open.js";
import { HttpClient } from "../support/http-client.js";
import { E2E_ADMIN_TOKEN } from "../support/server-process.js";

const http = new HttpClient(128);
const dirs: string[] = [];
after(async () => {
  await stopAllClusters();
  await http.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/**
 * Ports for `boxoffice up`: the balancer's is picked by the OS (`up` must know it before it starts the
 * balancer, so it cannot take 0); the instances' base is random in a wide range, and the supervisor skips
 * any port taken there.
 */
async function clusterPorts(): Promise<{ port: number; instancePortBase: string }> {
  return { port: await freePort(), instancePortBase: String(20_000 + Math.floor(Math.random() * 30_000)) };
}

function dataDir(): string {
  const dir = mkdtempSync(join(tmpdir(), "boxoffice-up-"));
  dirs.push(dir);
  return dir;
}

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Whether a server can listen where `url` points (the host and port a process of `up` listened on). */
function portFree(url: string): Promise<boolean> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(Number(port), hostname, () => server.close(() => resolve(true)));
  });
}

async function createEvent(cluster: ClusterProcess, capacity: number): Promise<Event> {
  // "ready" means the instances are; the balancer may not have seen one healthy yet: a 503 with
  // Retry-After is retried, as a client would.
  for (let attempt = 0; ; attempt++) {
    const answer = await http.call<Event>(cluster.url, "/v1/events", {
      body: { name: "Up", capacity, maxPerCustomer: 8 },
      admin: true,
    });
    if (answer.status === 503 && attempt < 100) {
      await sleep(200);
      continue;
    }
    assert.equal(answer.status, 201, answer.text);
    return answer.body;
  }
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(250);
  }
  assert.fail(`timed out waiting for ${what}`);
}

interface LoadResult {
  statuses: Map<number, number>;
  servedBy: Map<string, number>;
  /** Confirmed orders, by id (a replayed answer names the same order once). */
  orders: Map<string, Order>;
  failures: string[];
  /** Every purchase attempt, as the verifier reads it. */
  records: ClientRecord[];
}

/**
 * `concurrency` closed-loop buyers until `stop()` is called; with `writes` (0 to 1) the share of them
 * making keyed purchases, the rest reading the event. With `retryUntilAnswered`, a 5xx or no answer is
 * retried with the same Idempotency-Key and the same body (as a real client would) until a definite
 * answer; without it, every answer other than 200/201/409 counts as a failure.
 */
/** Numbers the loads, so that no two loads of a test send the same key. */
let loads = 0;

function startLoad(
  baseUrl: string,
  eventId: string,
  options: { concurrency: number; retryUntilAnswered: boolean; writes: number },
) {
  const result: LoadResult = {
    statuses: new Map(),
    servedBy: new Map(),
    orders: new Map(),
    failures: [],
    records: [],
  };
  let running = true;
  let sequence = 0;
  const load = `l${loads++}`;
  const count = <K>(map: Map<K, number>, key: K) => map.set(key, (map.get(key) ?? 0) + 1);

  async function buyer(worker: number): Promise<void> {
    const writer = worker < Math.round(options.concurrency * options.writes);
    while (running) {
      const key = `${load}-w${worker}-${sequence++}`;
      // One body per key: a retry sends exactly what the first attempt sent.
      const body = { customerId: key, quantity: 1 + (sequence % 2) };
      const path = writer ? `/v1/events/${eventId}/orders` : `/v1/events/${eventId}`;
      for (let attempt = 0; attempt < 50; attempt++) {
        const record: ClientRecord = {
          kind: "purchase",
          eventId,
          idempotencyKey: key,
          method: "POST",
          path,
          body,
          status: null,
          response: null,
          startedAtMs: Date.now(),
          endedAtMs: 0,
          instance: null,
        };
        let answer;
        try {
          answer = writer
            ? await http.call<Order>(baseUrl, path, { body, headers: { "idempotency-key": key } })
            : await http.call<Order>(baseUrl, path);
        } catch (error) {
          record.endedAtMs = Date.now();
          if (writer) result.records.push(record);
          result.failures.push(`${key}: ${(error as Error).message}`);
          if (!options.retryUntilAnswered) break;
          await sleep(100);
          continue;
        }
        record.endedAtMs = Date.now();
        record.status = answer.status;
        record.response = answer.body;
        count(result.statuses, answer.status);
        const servedBy = answer.headers["x-served-by"];
        if (typeof servedBy === "string") {
          count(result.servedBy, servedBy);
          record.instance = servedBy;
        }
        if (writer) result.records.push(record);
        if (writer && answer.status === 201) result.orders.set(answer.body.id, answer.body);
        if (answer.status < 500) {
          if (![200, 201, 409].includes(answer.status))
            result.failures.push(`${key}: ${answer.status} ${answer.text}`);
          break;
        }
        if (!options.retryUntilAnswered) {
          result.failures.push(`${key}: ${answer.status} ${answer.text.slice(0, 200)}`);
          break;
        }
        await sleep(100);
      }
    }
  }

  const workers = Array.from({ length: options.concurrency }, (_, i) => buyer(i));
  return {
    result,
    async stop(): Promise<LoadResult> {
      running = false;
      await Promise.all(workers);
      return result;
    },
  };
}

/**
 * Keyed purchases sent straight to one instance, `concurrency` at a time, until it stops answering;
 * resolves with their records (the unanswered ones are for the verifier to settle through the balancer).
 */
function directLoad(instanceUrl: string, eventId: string, concurrency: number) {
  const records: ClientRecord[] = [];
  let open = 0;
  let gone = false;
  const buyer = async (worker: number): Promise<void> => {
    for (let count = 0; !gone; count++) {
      const key = `direct-${worker}-${count}`;
      const body = { customerId: key, quantity: 1 };
      const path = `/v1/events/${eventId}/orders`;
      const record: ClientRecord = {
        kind: "purchase",
        eventId,
        idempotencyKey: key,
        method: "POST",
        path,
        body,
        status: null,
        response: null,
        startedAtMs: Date.now(),
        endedAtMs: 0,
        instance: null,
      };
      open++;
      try {
        const answer = await http.call(instanceUrl, path, { body, headers: { "idempotency-key": key } });
        record.status = answer.status;
        record.response = answer.body;
      } catch {
        gone = true;
      }
      open--;
      record.endedAtMs = Date.now();
      records.push(record);
    }
  };
  const done = Promise.all(Array.from({ length: concurrency }, (_, i) => buyer(i))).then(() => records);
  return { records, done, open: () => open };
}

describe("boxoffice up", () => {
  it(
    "spreads purchases over 3 instances; one SIGKILLed mid-sale with keyed purchases open on it is restarted and rejoins; every sale exactly once; SIGTERM leaves no process",
    { timeout: 180_000 },
    async () => {
      const { port, instancePortBase } = await clusterPorts();
      const cluster = await ClusterProcess.start(dataDir(), port, [
        "--instances",
        "3",
        "--instance-port-base",
        instancePortBase,
      ]);
      // Far more tickets than the test can sell: the kill always comes while tickets are on sale.
      const event = await createEvent(cluster, 1_000_000);
      const load = startLoad(cluster.url, event.id, { concurrency: 24, retryUntilAnswered: true, writes: 1 });
      await waitFor("purchases on every instance", async () => load.result.servedBy.size >= 3);

      const before = await cluster.status();
      const victim = before.instances.find((i) => i.id === "i-2");
      assert.ok(victim?.pid, "instance i-2 runs");
      const direct = directLoad(victim.url, event.id, 4);
      await waitFor("keyed purchases open on i-2", async () => direct.open() >= 3);
      const pid = victim.pid;
      const killedAtMs = await freezeWithRequestsOpen((signal) => process.kill(pid, signal), direct.open, {
        what: "instance i-2",
      });
      process.kill(pid, "SIGKILL");
      // Tickets only go as they sell: some left after the kill were on sale at it.
      const onSale = (await http.call<Event>(cluster.url, `/v1/events/${event.id}`)).body.available;
      assert.ok(onSale > 0, "tickets were on sale when the instance was killed");
      const directRecords = await direct.done;
      const lost = directRecords.filter((r) => r.status === null && r.startedAtMs <= killedAtMs);
      assert.ok(lost.length >= 1, "the killed instance took keyed purchases with it, unanswered");

      await waitFor("i-2 restarted and serving", async () => {
        const now = (await cluster.status()).instances.find((i) => i.id === "i-2");
        return now?.state === "ready" && now.restarts >= 1 && now.pid !== victim.pid;
      });
      const servedBeforeRejoin = load.result.servedBy.get("i-2") ?? 0;
      await waitFor(
        "i-2 taking traffic again",
        async () => (load.result.servedBy.get("i-2") ?? 0) > servedBeforeRejoin,
      );
      const result = await load.stop();
      const salesAfterKill = result.records.filter((r) => r.status === 201 && r.startedAtMs > killedAtMs);
      assert.ok(salesAfterKill.length > 0, "the sale went on after the kill");

      // The verifier settles the keys in doubt (the killed instance's among them) by replaying them, then
      // finds sold = the orders the clients know, each 201 on every instance, one order per key.
      const instances = (await cluster.status()).instances.map((i) => i.url);
      const report = await verify({
        baseUrl: cluster.url,
        adminToken: E2E_ADMIN_TOKEN,
        eventIds: [event.id],
        records: [...result.records, ...directRecords],
        instanceUrls: instances,
      });
      assert.ok(report.pass, JSON.stringify(report, null, 1));
      assert.ok(
        (report.counts.replayed ?? 0) >= lost.length,
        `every lost key replayed: ${JSON.stringify(report.counts)}`,
      );
      assert.deepEqual(result.failures, [], "through the balancer, no request failed");

      const status = await cluster.status();
      const pids = [status.balancer.pid, ...status.instances.map((i) => i.pid)];
      assert.equal(pids.filter(alive).length, 4);
      const tookMs = await cluster.stop();
      assert.ok(tookMs < 20_000, `up took ${tookMs} ms to stop`);
      await waitFor("every child process gone", async () => pids.every((pid) => !alive(pid)), 5000);
    },
  );

  it(
    "restarts every instance one at a time under load with zero failed requests; SIGKILLed, up leaves no process and no port taken",
    { timeout: 120_000 },
    async () => {
      const { port, instancePortBase } = await clusterPorts();
      const cluster = await ClusterProcess.start(dataDir(), port, [
        "--instances",
        "2",
        "--instance-port-base",
        instancePortBase,
      ]);
      const event = await createEvent(cluster, 1_000_000);
      const load = startLoad(cluster.url, event.id, {
        concurrency: 16,
        retryUntilAnswered: false,
        writes: 1,
      });
      await waitFor("some sales", async () => load.result.orders.size > 50);
      const oldIds = new Set((await cluster.status()).instances.map((i) => i.id));
      await cluster.restart();
      await waitFor("every instance replaced", async () => {
        const status = await cluster.status();
        const ready = status.instances.filter((i) => i.state === "ready");
        return ready.length === 2 && ready.every((i) => !oldIds.has(i.id)) && status.instances.length === 2;
      });
      const servedAfter = new Map(load.result.servedBy);
      await waitFor("the new instances serving", async () =>
        [...load.result.servedBy].some(([id, n]) => !oldIds.has(id) && n > (servedAfter.get(id) ?? 0)),
      );
      const result = await load.stop();
      assert.deepEqual(result.failures, [], "no request failed during the rolling restart");
      const sold = (await http.call<Event>(cluster.url, `/v1/events/${event.id}`)).body.sold;
      assert.equal(
        sold,
        [...result.orders.values()].reduce((n, o) => n + o.quantity, 0),
      );

      // A supervisor SIGKILLed cannot stop what it started: each child sees its IPC channel close and
      // stops on its own, freeing its port.
      const status = await cluster.status();
      const pids = [status.balancer.pid, ...status.instances.map((i) => i.pid)];
      const urls = [status.balancer.url, ...status.instances.map((i) => i.url)];
      assert.equal(pids.filter(alive).length, 3, "the balancer and 2 instances run");
      process.kill(cluster.pid, "SIGKILL");
      await cluster.stop();
      try {
        await waitFor("every process up started gone", async () => pids.every((pid) => !alive(pid)), 30_000);
      } finally {
        // Should the test fail, leave no orphan behind it.
        for (const pid of pids.filter(alive)) process.kill(pid!, "SIGKILL");
      }
      for (const url of urls) assert.ok(await portFree(url), `${url} is free`);
    },
  );

  it(
    "scales up to --max under a burst of purchases and reads and back to --min when quiet, failing no request",
    { timeout: 120_000 },
    async () => {
      const { port, instancePortBase } = await clusterPorts();
      const cluster = await ClusterProcess.start(dataDir(), port, [
        "--instances",
        "1",
        "--min",
        "1",
        "--max",
        "3",
        "--target-in-flight",
        "4",
        "--scale-window-ms",
        "1000",
        "--scale-up-cooldown-ms",
        "1000",
        // Reversing waits the longer cooldown: no scale-down in the first 3 s after a scale-up.
        "--scale-down-cooldown-ms",
        "3000",
        "--instance-port-base",
        instancePortBase,
      ]);
      const event = await createEvent(cluster, 1_000_000);
      const ready = async () => (await cluster.status()).instances.filter((i) => i.state === "ready").length;
      assert.equal(await ready(), 1);
      // Half the buyers purchase (keyed writes that must not fail while instances come and go), half read.
      const burst = startLoad(cluster.url, event.id, {
        concurrency: 48,
        retryUntilAnswered: false,
        writes: 0.5,
      });
      await waitFor("3 instances", async () => (await ready()) === 3);
      const burstResult = await burst.stop();
      const quiet = startLoad(cluster.url, event.id, {
        concurrency: 2,
        retryUntilAnswered: false,
        writes: 0.5,
      });
      await waitFor(
        "back to 1 instance",
        async () => (await ready()) === 1 && (await cluster.status()).instances.length === 1,
      );
      const quietResult = await quiet.stop();
      const purchases = [...burstResult.records, ...quietResult.records].filter((r) => r.status === 201);
      assert.ok(purchases.length > 0, "purchases were made while the cluster scaled");
      const sold = (await http.call<Event>(cluster.url, `/v1/events/${event.id}`)).body.sold;
      assert.equal(
        sold,
        [...new Map([...burstResult.orders, ...quietResult.orders]).values()].reduce(
          (n, o) => n + o.quantity,
          0,
        ),
        "sold = the purchases answered 201 while scaling",
      );
      assert.deepEqual(
        [...burstResult.failures, ...quietResult.failures],
        [],
        "no request failed while scaling",
      );
      const decisions = (await cluster.status()).autoscale?.decisions ?? [];
      const steps = decisions.map((d) => (d.action === "none" ? "none" : `${d.action}:${d.from}->${d.to}`));
      assert.ok(steps.includes("up:1->2") && steps.includes("up:2->3"), `reached --max: ${steps.join(", ")}`);
      assert.deepEqual(
        steps.slice(-2),
        ["down:3->2", "down:2->1"],
        `came back to --min: ${steps.join(", ")}`,
      );
      for (const step of steps) {
        const [action, change] = step.split(":");
        const [from, to] = (change ?? "").split("->");
        assert.ok(
          cluster.lines.some((l) => l.includes(`autoscale ${action}: ${from} -> ${to}`)),
          `decision ${step} is logged`,
        );
      }
      await cluster.stop();
    },
  );
});
