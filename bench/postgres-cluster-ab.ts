/**
 * `node dist/bench/postgres-cluster-ab.js <checkoutA> <checkoutB> [--events 1] [--seconds 5] [--rounds 2]
 * [--store embedded]`:
 * two builds of the whole purchase path on PostgreSQL + Redis, side by side. Each round starts, for A
 * then B (B then A on odd rounds), the build's own cluster (its bench/purchase-cluster.ts: two instances
 * and the balancer, wrk at 64 connections, one-ticket orders with unique Idempotency-Keys) in a schema of
 * its own, warms it for 2 s, sells for `seconds`, and prints confirmed orders/s and p99 with the CPU
 * per confirmed order of the two instances, of the balancer and of the PostgreSQL backends serving the
 * instances (from /proc: utime + stime; the backends found through the instances' sockets). CPU per
 * order hardly depends on what else the machine does; the rate does.
 *
 * PostgreSQL and Redis from BOXOFFICE_BENCH_POSTGRES_URL and BOXOFFICE_BENCH_REDIS_URL (the defaults are
 * this machine's). Needs `ss` (iproute2) and wrk. `--store embedded` runs the embedded default instead
 * (SQLite, a file per event, the file lock; no PostgreSQL backends to count).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { purchaseClusterOf, takingTurns } from "./checkouts-ab.js";
import type { WrkResult } from "./purchase-cluster.js";

const POSTGRES_URL = process.env.BOXOFFICE_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.BOXOFFICE_BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const WARM_UP_SECONDS = 2;

interface Measured {
  wrk: WrkResult;
  /** CPU µs per confirmed order. */
  instancesUs: number;
  balancerUs: number;
  backendsUs: number;
}

/** CPU time (µs) a process spent so far, from /proc/<pid>/stat (utime + stime, in ticks); 0 once gone. */
function cpuUs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    return (Number(fields[11]) + Number(fields[12])) * 10_000;
  } catch {
    return 0;
  }
}

/** The local ports of the connections that the processes `pids` hold to the PostgreSQL server. */
function postgresClientPorts(pids: readonly number[]): number[] {
  const server = new URL(POSTGRES_URL);
  const out = execFileSync("ss", ["-tnpH", "dst", `${server.hostname}:${server.port || 5432}`], {
    encoding: "utf8",
  });
  const ports: number[] = [];
  for (const line of out.split("\n")) {
    if (!pids.some((pid) => line.includes(`pid=${pid},`))) continue;
    const local = line.trim().split(/\s+/)[3] ?? "";
    ports.push(Number(local.slice(local.lastIndexOf(":") + 1)));
  }
  return ports;
}

async function measure(root: string, events: number, seconds: number, embedded: boolean): Promise<Measured> {
  const Cluster = await purchaseClusterOf(root);
  const dir = mkdtempSync(join(tmpdir(), "boxoffice-cluster-ab-"));
  const schema = `bench_cluster_ab_${process.pid}`;
  const cluster = new Cluster(
    embedded
      ? { dir, store: "sqlite", lock: "file" }
      : { dir, store: `${POSTGRES_URL}?schema=${schema}`, lock: REDIS_URL },
  );
  const admin = new pg.Client({ connectionString: POSTGRES_URL });
  await admin.connect();
  try {
    await cluster.start();
    const ids = await cluster.createEvents(events);
    cluster.sell(ids, WARM_UP_SECONDS);
    const pid = (name: string) => cluster.processes.find((proc) => proc.name === name)?.child.pid;
    const instances = [pid("s1"), pid("s2")].filter((p): p is number => p !== undefined);
    const { rows } = embedded
      ? { rows: [] }
      : await admin.query<{ pid: number }>(
          "SELECT pid FROM pg_stat_activity WHERE client_port = ANY($1::int[])",
          [postgresClientPorts(instances)],
        );
    const sample = () => ({
      instances: instances.reduce((sum, p) => sum + cpuUs(p), 0),
      balancer: cpuUs(pid("lb")),
      backends: rows.reduce((sum, row) => sum + cpuUs(row.pid), 0),
    });
    const before = sample();
    const wrk = cluster.sell(ids, seconds);
    const after = sample();
    const orders = Math.max(1, wrk.confirmedPerS * seconds);
    return {
      wrk,
      instancesUs: (after.instances - before.instances) / orders,
      balancerUs: (after.balancer - before.balancer) / orders,
      backendsUs: (after.backends - before.backends) / orders,
    };
  } finally {
    await cluster.stop();
    await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    await admin.end();
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: {
      events: { type: "string", default: "1" },
      seconds: { type: "string", default: "5" },
      rounds: { type: "string", default: "2" },
      store: { type: "string", default: "postgres" },
    },
  });
  if (positionals.length !== 2) {
    console.error("usage: node dist/bench/postgres-cluster-ab.js <checkoutA> <checkoutB> [--events 1] ...");
    process.exitCode = 2;
    return;
  }
  await takingTurns(positionals, Number(values.rounds), async (root) => {
    const m = await measure(root, Number(values.events), Number(values.seconds), values.store === "embedded");
    console.log(
      `${root}: ${m.wrk.confirmedPerS.toFixed(0)} orders/s, p99 ${m.wrk.p99Ms.toFixed(0)} ms, ` +
        `non-2xx ${m.wrk.non2xx}; CPU per order: instances ${m.instancesUs.toFixed(0)} µs, ` +
        `balancer ${m.balancerUs.toFixed(0)} µs, PostgreSQL backends ${m.backendsUs.toFixed(0)} µs`,
    );
  });
}

await main();
