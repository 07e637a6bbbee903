/**
 * A dev tool: the whole purchase path under load, profiled. Starts two `boxoffice server` instances
 * and `boxoffice lb` in front of them, each with `node --cpu-prof` (bench/purchase-cluster.ts), sells
 * one-ticket orders with unique Idempotency-Keys through the balancer with wrk (64 connections), stops
 * everything with SIGTERM (the profiles are written on exit), and turns each profile into a flame graph
 * of the samples taken while wrk ran (bench/flamegraph.ts).
 *
 *   node dist/bench/profile-purchase.js [--store sqlite|<postgres url>] [--lock <lock>] [--events 1|50]
 *                                       [--seconds 10] [--out docs/benchmarks] [--name hot]
 *                                       [--warm-up 3] [--no-profile] [--via lb|s1] [--root <checkout>]
 *                                       [--placement least-connections|event] [--connections 64]
 *                                       [--layout single|per-event] [--server-arg="--lock-scope global"]…
 *
 * With a PostgreSQL store the instances share a schema of its own (dropped afterwards). Prints wrk's
 * rate and latency, the CPU time each process spent per confirmed order (from /proc, so a busy shared
 * machine moves it far less than the rate), the read- and write-type system calls per confirmed order
 * (/proc/<pid>/io: socket and file I/O alike), each instance's commits (lock grants), sales per commit and mean
 * lock wait over the measured run (from its /metrics), and each process's most expensive functions; writes
 * <out>/profile-<name>-<process>.svg. `--no-profile` runs without `--cpu-prof` (whose sampling costs a
 * few percent) and only prints the rate and the CPU per order: the A/B mode. `--via s1` sends the load
 * straight to the first instance instead of the balancer; `--root` runs another built checkout's
 * `boxoffice` (the "before" of an A/B); `--placement` is the balancer's; `--connections` wrk's (64 by default, the issue's). The load first runs `--warm-up` seconds unmeasured: right after
 * start, V8's optimising compiler threads still work on the hot path (one instance sold to straight
 * measured 195–209 µs of CPU per order cold against 104–146 warm).
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import pg from "pg";
import { foldProfile, renderFlameGraph, topFrames } from "./flamegraph.js";
import { PurchaseCluster } from "./purchase-cluster.js";

const { values } = parseArgs({
  options: {
    store: { type: "string", default: "sqlite" },
    lock: { type: "string", default: "file" },
    events: { type: "string", default: "1" },
    seconds: { type: "string", default: "10" },
    via: { type: "string", default: "lb" },
    "warm-up": { type: "string", default: "3" },
    root: { type: "string" },
    placement: { type: "string" },
    out: { type: "string", default: "docs/benchmarks" },
    name: { type: "string", default: "hot" },
    "no-profile": { type: "boolean", default: false },
    connections: { type: "string", default: "64" },
    layout: { type: "string" },
    "server-arg": { type: "string", multiple: true, default: [] },
  },
});

/** An instance's sell batch tries, confirmed orders and lock grants so far, from its /metrics. */
async function sellStats(
  url: string,
): Promise<{ batches: number; sold: number; lockWaits: number; lockWaitS: number } | null> {
  try {
    const text = await (await fetch(`${url}/metrics`)).text();
    const sum = (name: string): number =>
      [...text.matchAll(new RegExp(`^${name}(?:\\{[^}]*\\})? (\\S+)$`, "gm"))].reduce(
        (total, match) => total + Number(match[1]),
        0,
      );
    return {
      batches: sum("boxoffice_sell_batch_size_count"),
      // Confirmed orders this instance answered (tickets_sold_total is counted after the answer).
      sold: [
        ...text.matchAll(
          /^boxoffice_http_requests_total\{[^}]*route="\/v1\/events\/:eventId\/orders",status="201"[^}]*\} (\S+)$/gm,
        ),
      ].reduce((total, match) => total + Number(match[1]), 0),
      lockWaits: sum("boxoffice_lock_wait_seconds_count"),
      lockWaitS: sum("boxoffice_lock_wait_seconds_sum"),
    };
  } catch {
    return null;
  }
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "boxoffice-profile-"));
  const store = values.store ?? "sqlite";
  const postgres = store.startsWith("postgres");
  const schema = `profile_${process.pid}`;
  const storeUrl = postgres ? `${store}${store.includes("?") ? "&" : "?"}schema=${schema}` : store;
  const lock = values.lock ?? "file";
  const out = values.out ?? "docs/benchmarks";
  const cluster = new PurchaseCluster({
    dir,
    store: storeUrl,
    lock,
    profile: !values["no-profile"],
    root: values.root,
    lbArgs: values.placement ? ["--placement", values.placement] : [],
    layout: values.layout === "single" || values.layout === "per-event" ? values.layout : undefined,
    serverArgs: values["server-arg"].flatMap((arg) => arg.split(" ")),
  });
  // The load's start and end: only the samples between them are drawn.
  let loadFromMs = 0;
  let loadToMs = 0;
  try {
    await cluster.start();
    const events = await cluster.createEvents(Number(values.events));
    const warmUp = Number(values["warm-up"]);
    const connections = Number(values.connections);
    if (warmUp > 0) cluster.sell(events, warmUp, values.via, connections);
    const instances = cluster.processes.filter((proc) => proc.name !== "lb");
    const statsBefore = await Promise.all(instances.map((proc) => sellStats(proc.url)));
    loadFromMs = Date.now() + 500;
    const result = cluster.sell(events, Number(values.seconds), values.via, connections);
    const statsAfter = await Promise.all(instances.map((proc) => sellStats(proc.url)));
    loadToMs = Date.now() - 200;
    console.log(
      `${values.name}: ${result.rps.toFixed(0)} req/s, p99 ${result.p99Ms.toFixed(1)} ms, ` +
        `non-2xx ${result.non2xx} (${store}, lock ${lock}, ${events.length} events)`,
    );
    const cpu = Object.entries(result.cpuUsPerOrder).map(
      ([name, us]) => `${name} ${us.toFixed(0)} (sys ${result.sysUsPerOrder[name]?.toFixed(0)})`,
    );
    console.log(`CPU µs per confirmed order: ${cpu.join(", ")}`);
    const io = Object.entries(result.readsPerOrder).map(
      ([name, reads]) => `${name} ${reads.toFixed(1)} / ${result.writesPerOrder[name]?.toFixed(1)}`,
    );
    console.log(`read / write system calls per confirmed order: ${io.join(", ")}`);
    const batches = instances.map((proc, i) => {
      const [from, to] = [statsBefore[i], statsAfter[i]];
      if (!from || !to) return `${proc.name} ?`;
      // A batch whose lock was busy is tried again in a later tick: sell_batch_size counts tries, the
      // lock wait histogram counts grants (one commit each).
      const grants = to.lockWaits - from.lockWaits;
      const perGrant = (to.sold - from.sold) / grants;
      const tries = (to.batches - from.batches) / grants;
      const waitMs = ((to.lockWaitS - from.lockWaitS) * 1000) / grants;
      return (
        `${proc.name} ${grants} commits of ${perGrant.toFixed(1)} sales (${tries.toFixed(2)} tries each), ` +
        `lock wait ${waitMs.toFixed(2)} ms`
      );
    });
    console.log(`sell batches: ${batches.join(", ")}`);
  } finally {
    await cluster.stop();
    if (postgres) {
      const client = new pg.Client({ connectionString: store });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      await client.end();
    }
  }
  if (values["no-profile"]) {
    rmSync(dir, { recursive: true, force: true });
    return;
  }
  mkdirSync(out, { recursive: true });
  for (const proc of cluster.processes) {
    const file = proc.profileDir && readdirSync(proc.profileDir).find((name) => name.endsWith(".cpuprofile"));
    if (!proc.profileDir || !file) {
      console.log(`${proc.name}: no profile written`);
      continue;
    }
    const root = foldProfile(JSON.parse(readFileSync(join(proc.profileDir, file), "utf8")), {
      fromMs: loadFromMs - proc.spawnedAtMs,
      toMs: loadToMs - proc.spawnedAtMs,
    });
    const svg = join(out, `profile-${values.name}-${proc.name}.svg`);
    writeFileSync(svg, renderFlameGraph(root, `${values.name}: ${proc.name} (${root.total} samples)`));
    const { self, total } = topFrames(root, 15);
    const share = (count: number) => `${((100 * count) / root.total).toFixed(1).padStart(5)}%`;
    console.log(`\n${proc.name}: ${root.total} samples -> ${svg}\n  self:`);
    for (const [name, count] of self) console.log(`    ${share(count)}  ${name}`);
    console.log("  total:");
    for (const [name, count] of total) console.log(`    ${share(count)}  ${name}`);
  }
  rmSync(dir, { recursive: true, force: true });
}

await main();
