/**
 * Purchases per second of ONE server instance (a child process running the built CLI, embedded SQLite
 * store, durability full, lock "none" unless BENCH_LOCK says otherwise) under closed-loop HTTP load
 * from this process (undici): one hot event, and the same load spread over 50 events, in both layouts.
 * Beside it, the disk's own fsync rate on the same directory, since one commit costs one fsync.
 * Writes docs/benchmarks/store.md.
 */
import {
  closeSync,
  fsyncSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  rmSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { Pool } from "undici";
import { ServerProcess, stopAll } from "../test/support/server-process.js";
import { callInstance } from "./instance-call.js";
import { machineNote } from "./machine-note.js";

const DURATION_MS = Number(process.env.BENCH_DURATION_MS ?? 8000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 64);
const SPREAD_EVENTS = 50;
/** The store is what is measured; set BENCH_LOCK=file (etc.) to see a lock's cost on top. */
const LOCK = process.env.BENCH_LOCK ?? "none";

interface Result {
  layout: string;
  events: number;
  sales: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: number;
  meanBatch: number;
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] as number;
}

/** Writes 4 KiB and fsyncs, in a loop, for `ms`: the ceiling on durable commits per second. */
function fsyncRate(dir: string, ms: number): number {
  const file = join(dir, "fsync-probe");
  const fd = openSync(file, "w");
  const block = Buffer.alloc(4096, 1);
  let count = 0;
  const end = Date.now() + ms;
  try {
    while (Date.now() < end) {
      writeSync(fd, block, 0, block.length, 0);
      fsyncSync(fd);
      count++;
    }
  } finally {
    closeSync(fd);
    rmSync(file, { force: true });
  }
  return count / (ms / 1000);
}

async function scenario(layout: "single" | "per-event", eventCount: number): Promise<Result> {
  const dir = mkdtempSync(join(os.tmpdir(), `boxoffice-bench-${layout}-`));
  const server = await ServerProcess.start({
    dataDir: dir,
    layout,
    instanceId: `bench-${layout}`,
    args: ["--max-open-events", "64", "--lock", LOCK],
  });
  const pool = new Pool(server.url, { connections: CONCURRENCY, pipelining: 1 });
  try {
    const events: string[] = [];
    for (let i = 0; i < eventCount; i++) {
      const event = await callInstance<{ id: string }>(pool, "POST", "/v1/events", {
        name: `Bench ${i}`,
        capacity: 1_000_000,
        maxPerCustomer: 1_000_000,
      });
      events.push(event.id);
    }
    const latencies: number[] = [];
    let errors = 0;
    let next = 0;
    const started = performance.now();
    const end = started + DURATION_MS;
    const worker = async () => {
      while (performance.now() < end) {
        const n = next++;
        const eventId = events[n % events.length] as string;
        const t0 = performance.now();
        const response = await pool.request({
          method: "POST",
          path: `/v1/events/${eventId}/orders`,
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ customerId: `b-${n}`, quantity: 1 }),
        });
        await response.body.dump();
        if (response.statusCode === 201) latencies.push(performance.now() - t0);
        else errors++;
      }
    };
    await Promise.all(Array.from({ length: CONCURRENCY }, worker));
    const seconds = (performance.now() - started) / 1000;
    const metrics = await callInstance<string>(pool, "GET", "/metrics");
    const sum = Number(/^boxoffice_sell_batch_size_sum\{[^}]*\} ([\d.e+]+)/m.exec(metrics)?.[1]);
    const count = Number(/^boxoffice_sell_batch_size_count\{[^}]*\} (\d+)/m.exec(metrics)?.[1]);
    latencies.sort((a, b) => a - b);
    return {
      layout,
      events: eventCount,
      sales: latencies.length,
      perSecond: latencies.length / seconds,
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      errors,
      meanBatch: sum / count,
    };
  } finally {
    await pool.close();
    await server.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

const probeDir = mkdtempSync(join(os.tmpdir(), "boxoffice-bench-fsync-"));
const fsyncBefore = fsyncRate(probeDir, 2000);
const results: Result[] = [];
for (const layout of ["single", "per-event"] as const) {
  for (const events of [1, SPREAD_EVENTS]) {
    const result = await scenario(layout, events);
    console.log(JSON.stringify(result));
    results.push(result);
  }
}
const fsyncAfter = fsyncRate(probeDir, 2000);
rmSync(probeDir, { recursive: true, force: true });
await stopAll();

const fixed = (n: number, digits = 0) => (Number.isFinite(n) ? n.toFixed(digits) : "n/a");
const lines = [
  "# Store benchmark: purchases per second of one instance",
  "",
  `Run: ${new Date().toISOString()} on ${os.cpus().length} × ${os.cpus()[0]?.model ?? "CPU"}, ` +
    `${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}, ${os.tmpdir()} on the local disk.`,
  "",
  machineNote(),
  "",
  "What was measured: one `boxoffice server` process (SQLite, durability full: fsync at every commit;",
  `lock "${LOCK}"; group commit up to 256 sales per batch), ${CONCURRENCY} concurrent closed-loop HTTP buyers`,
  `from the bench process (undici, keep-alive), ${DURATION_MS / 1000} s per row, 1 ticket per order,`,
  "every order a new customer. Latency is request to 201 answer. Mean batch = sales per commit.",
  "",
  `Disk fsync rate on the same directory (4 KiB write + fsync, 2 s): **${fixed(fsyncBefore)}/s** before,`,
  `**${fixed(fsyncAfter)}/s** after — the ceiling for one-commit-per-sale.`,
  "",
  "| layout | events | sales/s | p50 ms | p99 ms | mean batch | non-201 |",
  "|---|---|---|---|---|---|---|",
  ...results.map(
    (r) =>
      `| ${r.layout} | ${r.events} | ${fixed(r.perSecond)} | ${fixed(r.p50Ms, 1)} | ${fixed(r.p99Ms, 1)} | ` +
      `${fixed(r.meanBatch, 1)} | ${r.errors} |`,
  ),
  "",
];
mkdirSync("docs/benchmarks", { recursive: true });
writeFileSync("docs/benchmarks/store.md", lines.join("\n"));
console.log(lines.join("\n"));
