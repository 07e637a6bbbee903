/**
 * The operator's CSV export (GET /v1/events/{id}/orders.csv) of 10,000 and of 100,000 orders from ONE
 * server instance (a child process running the built CLI, embedded SQLite store, per-event layout): the
 * time to stream it, its size, and the instance's peak resident memory during the export (VmHWM, reset
 * through /proc/<pid>/clear_refs just before). Bounded memory shows as the same peak for both sizes: the
 * export holds one page of orders, not the event. Writes docs/benchmarks/orders-export.md.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { request } from "undici";
import { planEvent } from "../src/domain/event.js";
import { newEventId } from "../src/domain/ids.js";
import type { Command } from "../src/domain/sale.js";
import { SqliteStore } from "../src/store/sqlite/sqlite-store.js";
import { E2E_ADMIN_TOKEN, ServerProcess, stopAll } from "../test/support/server-process.js";
import { machineNote } from "./machine-note.js";

const SIZES = (process.env.BENCH_EXPORT_SIZES ?? "10000,100000").split(",").map(Number);
const BATCH = 500;

interface Result {
  orders: number;
  seconds: number;
  megabytes: number;
  lines: number;
  baselineRssMb: number;
  peakRssMb: number;
}

/** A field of /proc/<pid>/status in MiB (VmRSS, VmHWM). */
function procMb(pid: number, field: "VmRSS" | "VmHWM"): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return Number(match?.[1] ?? Number.NaN) / 1024;
}

/** An event with `count` one-ticket orders, written straight through the store in batches. */
async function seed(store: SqliteStore, count: number): Promise<string> {
  const now = new Date();
  const plan = planEvent(
    { name: `Export ${count}`, capacity: count, maxPerOrder: 1, maxPerCustomer: 1 },
    newEventId(),
    now,
  );
  await store.createEvent(plan);
  for (let start = 0; start < count; start += BATCH) {
    const commands: Command[] = [];
    for (let i = start; i < Math.min(count, start + BATCH); i++) {
      // Now and then a name a spreadsheet would choke on, so the quoting and defusing paths are measured.
      const customerId = i % 50 === 0 ? `"Doe, Jane" ${i}` : i % 51 === 0 ? `=cmd-${i}` : `customer-${i}`;
      commands.push({
        type: "purchase",
        customerId,
        selection: { quantity: 1, seats: null },
        idempotency: null,
      });
    }
    const outcomes = await store.execute(plan.id, commands, null, now);
    if (outcomes.some((o) => !o.ok)) throw new Error("seeding refused a purchase");
  }
  return plan.id;
}

async function exportOnce(server: ServerProcess, eventId: string, orders: number): Promise<Result> {
  const pid = server.pid as number;
  const baselineRssMb = procMb(pid, "VmRSS");
  // "5" resets the peak resident set size (VmHWM) to the current one.
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
  const started = performance.now();
  const answer = await request(`${server.url}/v1/events/${eventId}/orders.csv`, {
    headers: { authorization: `Bearer ${E2E_ADMIN_TOKEN}` },
  });
  if (answer.statusCode !== 200) throw new Error(`export answered ${answer.statusCode}`);
  let bytes = 0;
  let lines = 0;
  for await (const chunk of answer.body) {
    const buffer = chunk as Buffer;
    bytes += buffer.length;
    for (let i = buffer.indexOf(10); i !== -1; i = buffer.indexOf(10, i + 1)) lines++;
  }
  const seconds = (performance.now() - started) / 1000;
  if (lines !== orders + 1) throw new Error(`expected ${orders + 1} lines, got ${lines}`);
  return {
    orders,
    seconds,
    megabytes: bytes / 1024 / 1024,
    lines,
    baselineRssMb,
    peakRssMb: procMb(pid, "VmHWM"),
  };
}

const dir = mkdtempSync(join(tmpdir(), "boxoffice-bench-export-"));
const results: Result[] = [];
try {
  const store = new SqliteStore({
    kind: "sqlite",
    dir,
    layout: "per-event",
    durability: "normal",
    maxOpenEvents: 8,
  });
  await store.init();
  const events = new Map<number, string>();
  for (const size of SIZES) events.set(size, await seed(store, size));
  await store.close();
  const server = await ServerProcess.start({
    dataDir: dir,
    instanceId: "export-bench",
    args: ["--lock", "none"],
  });
  for (const size of SIZES) {
    const result = await exportOnce(server, events.get(size) as string, size);
    results.push(result);
    console.log(
      `${size} orders: ${result.seconds.toFixed(2)} s, ${result.megabytes.toFixed(1)} MiB, RSS ${result.baselineRssMb.toFixed(0)} MiB before, peak ${result.peakRssMb.toFixed(0)} MiB during`,
    );
  }
} finally {
  await stopAll();
  rmSync(dir, { recursive: true, force: true });
}

const lines = [
  "# CSV export of an event's orders",
  "",
  "`GET /v1/events/{id}/orders.csv` from one server instance (embedded SQLite, per-event layout), read by an",
  "HTTP client in the benchmark's process as fast as it can. Peak RSS is the instance's VmHWM, reset just",
  "before each export: the export holds one page of 500 orders at a time, so the peak must not grow with",
  "the number of orders. Run: `npm run bench -- orders-export`.",
  "",
  "| orders | time (s) | CSV (MiB) | instance RSS before (MiB) | instance peak RSS during export (MiB) |",
  "|---:|---:|---:|---:|---:|",
  ...results.map(
    (r) =>
      `| ${r.orders.toLocaleString("en-US")} | ${r.seconds.toFixed(2)} | ${r.megabytes.toFixed(1)} | ${r.baselineRssMb.toFixed(0)} | ${r.peakRssMb.toFixed(0)} |`,
  ),
  "",
  machineNote(),
  "",
];
mkdirSync("docs/benchmarks", { recursive: true });
writeFileSync("docs/benchmarks/orders-export.md", lines.join("\n"));
