/**
 * `boxoffice up` as a user runs it: a supervisor process that starts the balancer and the instances as
 * separate processes. Purchases through the balancer spread over every instance; an instance killed in
 * the middle of a burst is restarted and rejoins with nothing oversold and every 201 durable; a rolling
 * restart and an autoscaling cycle under load fail no request; SIGTERM leaves no process behind.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Event } from "../../src/domain/event.js";
import type { Order } from "../../src/domain/sale.js";
import { ClusterProcess, stopAllClusters } from "../support/cluster-process.js";
import { HttpClient } from "../support/http-client.js";

const http = new HttpClient(128);
const dirs: string[] = [];
after(async () => {
  await stopAllClusters();
  await http.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

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

async function createEvent(cluster: ClusterProcess, capacity: number): Promise<Event> {
  const answer = await http.call<Event>(cluster.url, "/v1/events", {
    body: { name: "Up", capacity, maxPerCustomer: 8 },
    admin: true,
  });
  assert.equal(answer.status, 201, answer.text);
  return answer.body;
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
}

/**
 * `concurrency` closed-loop buyers until `stop()` is called. With `retryUntilAnswered`, a 5xx is retried
 * with the same Idempotency-Key (as a real client would) until a definitive answer; without it, every
 * answer other than 200/201/409 counts as a failure.
 */
function startLoad(
  cluster: ClusterProcess,
  eventId: string,
  options: { concurrency: number; retryUntilAnswered: boolean; readsOnly?: boolean },
) {
  const result: LoadResult = { statuses: new Map(), servedBy: new Map(), orders: new Map(), failures: [] };
  let running = true;
  let sequence = 0;
  const count = <K>(map: Map<K, number>, key: K) => map.set(key, (map.get(key) ?? 0) + 1);

  async function buyer(worker: number): Promise<void> {
    while (running) {
      const key = `w${worker}-${sequence++}`;
      for (let attempt = 0; attempt < 50; attempt++) {
        let answer;
        try {
          answer = options.readsOnly
            ? await http.call<Order>(cluster.url, `/v1/events/${eventId}`)
            : await http.call<Order>(cluster.url, `/v1/events/${eventId}/orders`, {
                body: { customerId: key, quantity: 1 + (sequence % 2) },
                headers: { "idempotency-key": key },
              });
        } catch (error) {
          result.failures.push(`${key}: ${(error as Error).message}`);
          if (!options.retryUntilAnswered) break;
          await sleep(100);
          continue;
        }
        count(result.statuses, answer.status);
        const servedBy = answer.headers["x-served-by"];
        if (typeof servedBy === "string") count(result.servedBy, servedBy);
        if (answer.status === 201) result.orders.set(answer.body.id, answer.body);
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

describe("boxoffice up", () => {
  it(
    "spreads purchases over 3 instances; a SIGKILLed one is restarted and rejoins; nothing oversold; SIGTERM leaves no process",
    { timeout: 120_000 },
    async () => {
      const cluster = await ClusterProcess.start(dataDir(), 19501, [
        "--instances",
        "3",
        "--instance-port-base",
        "19511",
      ]);
      const event = await createEvent(cluster, 400);
      const load = startLoad(cluster, event.id, { concurrency: 24, retryUntilAnswered: true });
      await waitFor("purchases on every instance", async () => load.result.servedBy.size >= 3);

      const before = await cluster.status();
      const victim = before.instances.find((i) => i.id === "i-2");
      assert.ok(victim?.pid, "instance i-2 runs");
      process.kill(victim.pid, "SIGKILL");
      await waitFor("i-2 restarted and serving", async () => {
        const now = (await cluster.status()).instances.find((i) => i.id === "i-2");
        return now?.state === "ready" && now.restarts >= 1 && now.pid !== victim.pid;
      });
      const servedBeforeRejoin = load.result.servedBy.get("i-2") ?? 0;
      await waitFor("i-2 taking traffic again, or the event sold out", async () => {
        const current = await http.call<Event>(cluster.url, `/v1/events/${event.id}`);
        return (load.result.servedBy.get("i-2") ?? 0) > servedBeforeRejoin || current.body.available === 0;
      });
      await waitFor(
        "the event sold out",
        async () => (await http.call<Event>(cluster.url, `/v1/events/${event.id}`)).body.available === 0,
      );
      const result = await load.stop();

      const sold = (await http.call<Event>(cluster.url, `/v1/events/${event.id}`)).body;
      const answered = [...result.orders.values()].reduce((n, o) => n + o.quantity, 0);
      assert.equal(sold.sold, 400, "sold out exactly");
      assert.equal(answered, 400, "the 201 answers add up to the capacity: nothing sold twice, nothing lost");
      for (const order of result.orders.values()) {
        const stored = await http.call<Order>(cluster.url, `/v1/orders/${order.id}`, { admin: true });
        assert.equal(stored.status, 200, `order ${order.id} answered 201 is in the store`);
        assert.equal(stored.body.status, "confirmed");
      }
      assert.deepEqual(result.failures, []);

      const status = await cluster.status();
      const pids = [status.balancer.pid, ...status.instances.map((i) => i.pid)];
      assert.equal(pids.filter(alive).length, 4);
      const tookMs = await cluster.stop();
      assert.ok(tookMs < 20_000, `up took ${tookMs} ms to stop`);
      await waitFor("every child process gone", async () => pids.every((pid) => !alive(pid)), 5000);
    },
  );

  it(
    "restarts every instance one at a time under load with zero failed requests",
    { timeout: 120_000 },
    async () => {
      const cluster = await ClusterProcess.start(dataDir(), 19531, [
        "--instances",
        "2",
        "--instance-port-base",
        "19541",
      ]);
      const event = await createEvent(cluster, 1_000_000);
      const load = startLoad(cluster, event.id, { concurrency: 16, retryUntilAnswered: false });
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
      await cluster.stop();
    },
  );

  it(
    "scales up to --max under a burst and back to --min when quiet, failing no request",
    { timeout: 120_000 },
    async () => {
      const cluster = await ClusterProcess.start(dataDir(), 19561, [
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
        "19571",
      ]);
      const event = await createEvent(cluster, 10);
      const ready = async () => (await cluster.status()).instances.filter((i) => i.state === "ready").length;
      assert.equal(await ready(), 1);
      const burst = startLoad(cluster, event.id, {
        concurrency: 48,
        retryUntilAnswered: false,
        readsOnly: true,
      });
      await waitFor("3 instances", async () => (await ready()) === 3);
      const burstResult = await burst.stop();
      const quiet = startLoad(cluster, event.id, {
        concurrency: 1,
        retryUntilAnswered: false,
        readsOnly: true,
      });
      await waitFor(
        "back to 1 instance",
        async () => (await ready()) === 1 && (await cluster.status()).instances.length === 1,
      );
      const quietResult = await quiet.stop();
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
