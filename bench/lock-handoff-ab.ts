/**
 * `node dist/bench/lock-handoff-ab.js <checkoutA> <checkoutB> [--store embedded|postgres] [--seconds 5]
 * [--rounds 2]`: how one hot event's lock passes between the two instances of two builds, side by side
 * (A then B, B then A on odd rounds), through the balancer with wrk as bench/purchase-cluster.ts sells.
 * Besides the rate and p99 it prints what the shared machine's load hardly moves: the instances' CPU per
 * order, and from both instances' /metrics the lock grants (ticks that got the lock) and the ticks that
 * found it busy and were put back, per confirmed order, with the mean sales per grant and the mean wait
 * from a tick's first ask to its grant. With
 * `--store postgres` the lock is a private redis-server (port 16398, started and killed here), whose
 * `INFO commandstats` gives the lock's script calls and PUBLISHes per order and whose own CPU per order
 * is counted too. PostgreSQL from BOXOFFICE_BENCH_POSTGRES_URL (default this machine's).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { Redis } from "ioredis";
import pg from "pg";
import { purchaseClusterOf, takingTurns } from "./checkouts-ab.js";
import { RedisServer } from "../test/support/redis-servers.js";

const POSTGRES_URL = process.env.BOXOFFICE_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const ADMIN_TOKEN = "bench-admin-token-0123456789";
const REDIS_PORT = 16398;
const WARM_UP_SECONDS = 2;

/** The sum of a Prometheus series (e.g. a histogram's `_count` or `_sum`) over every instance. */
async function histogramCount(urls: readonly string[], name: string, series = "count"): Promise<number> {
  let total = 0;
  for (const url of urls) {
    const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
    const text = await res.text();
    const line = text.split("\n").find((l) => l.startsWith(`${name}_${series}`));
    total += Number(line?.split(" ").at(-1) ?? NaN);
  }
  return total;
}

/** Calls per command from `INFO commandstats`, and the server's CPU in µs. */
async function redisStats(client: Redis): Promise<{ calls: Map<string, number>; cpuUs: number }> {
  const calls = new Map<string, number>();
  for (const line of (await client.info("commandstats")).split("\n")) {
    const match = /^cmdstat_([a-z|]+):calls=(\d+)/.exec(line.trim());
    if (match) calls.set(match[1]!, Number(match[2]));
  }
  const cpu = await client.info("cpu");
  const field = (name: string): number => Number(new RegExp(`${name}:([0-9.]+)`).exec(cpu)?.[1] ?? NaN);
  return { calls, cpuUs: (field("used_cpu_user") + field("used_cpu_sys")) * 1e6 };
}

async function measure(root: string, postgres: boolean, seconds: number): Promise<string> {
  const Cluster = await purchaseClusterOf(root);
  const dir = mkdtempSync(join(tmpdir(), "boxoffice-handoff-ab-"));
  const schema = `bench_handoff_ab_${process.pid}`;
  const redis = postgres ? new RedisServer(REDIS_PORT) : null;
  await redis?.start();
  const stats = redis ? new Redis(redis.url) : null;
  const cluster = new Cluster(
    postgres
      ? { dir, store: `${POSTGRES_URL}?schema=${schema}`, lock: redis!.url }
      : { dir, store: "sqlite", lock: "file" },
  );
  try {
    await cluster.start();
    const [id] = await cluster.createEvents(1);
    cluster.sell([id!], WARM_UP_SECONDS);
    const urls = cluster.processes.filter((p) => p.name !== "lb").map((p) => p.url);
    const ticks0 = await histogramCount(urls, "boxoffice_sell_batch_size");
    const grants0 = await histogramCount(urls, "boxoffice_lock_wait_seconds");
    const waited0 = await histogramCount(urls, "boxoffice_lock_wait_seconds", "sum");
    const redis0 = stats ? await redisStats(stats) : null;
    const wrk = cluster.sell([id!], seconds);
    const redis1 = stats ? await redisStats(stats) : null;
    const ticks = (await histogramCount(urls, "boxoffice_sell_batch_size")) - ticks0;
    const grants = (await histogramCount(urls, "boxoffice_lock_wait_seconds")) - grants0;
    const waitedS = (await histogramCount(urls, "boxoffice_lock_wait_seconds", "sum")) - waited0;
    const orders = Math.max(1, wrk.confirmedPerS * seconds);
    const instancesUs = (wrk.cpuUsPerOrder.s1 ?? NaN) + (wrk.cpuUsPerOrder.s2 ?? NaN);
    let line =
      `${wrk.confirmedPerS.toFixed(0)} orders/s, p99 ${wrk.p99Ms.toFixed(0)} ms, non-2xx ${wrk.non2xx}; ` +
      `instances ${instancesUs.toFixed(0)} µs/order; ${(grants / seconds).toFixed(0)} grants/s, ` +
      `${(orders / Math.max(1, grants)).toFixed(1)} sales/grant, busy ticks ${((ticks - grants) / orders).toFixed(2)}/order, ` +
      `mean lock wait ${((waitedS * 1000) / Math.max(1, grants)).toFixed(1)} ms`;
    if (redis0 && redis1) {
      const delta = (name: string): number => (redis1.calls.get(name) ?? 0) - (redis0.calls.get(name) ?? 0);
      const scripts = delta("evalsha") + delta("eval");
      line +=
        `; Redis: ${(scripts / orders).toFixed(2)} scripts/order, ${(delta("publish") / orders).toFixed(2)} ` +
        `PUBLISH/order, ${((redis1.cpuUs - redis0.cpuUs) / orders).toFixed(0)} µs CPU/order`;
    }
    return line;
  } finally {
    await cluster.stop();
    stats?.disconnect();
    await redis?.kill();
    if (postgres) {
      const admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      await admin.end();
    }
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      store: { type: "string", default: "embedded" },
      seconds: { type: "string", default: "5" },
      rounds: { type: "string", default: "2" },
    },
  });
  if (positionals.length !== 2) {
    console.error("usage: node dist/bench/lock-handoff-ab.js <checkoutA> <checkoutB> [--store postgres] ...");
    process.exitCode = 2;
    return;
  }
  await takingTurns(positionals, Number(values.rounds), async (root) => {
    console.log(`${root}: ${await measure(root, values.store === "postgres", Number(values.seconds))}`);
  });
}

await main();
