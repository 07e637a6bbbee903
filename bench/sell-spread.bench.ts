/**
 * `npm run bench -- sell-spread`: issue #18's table. Through the balancer with 2 instances, wrk at 64
 * connections, one-ticket orders with unique Idempotency-Keys (bench/purchase-cluster.ts), confirmed
 * orders per second and p99 of
 *
 * - one hot event and 50 events, embedded SQLite, a file per event (the default) and one file, the
 *   latter with its default of one global lock (the seed's first design, one database and one lock) and
 *   again with a lock per event (`--lock-scope event`, the default before 2026-12-01);
 * - one hot event and 50 events, PostgreSQL + a Redis lock;
 * - the default layout again with the balancer's `--placement event` (each event's orders on one
 *   instance; not the default placement).
 *
 * Each store's cluster is started once; its hot-event and 50-event runs alternate for ROUNDS rounds
 * (median kept), so every row of the table comes from the same run. Results:
 * docs/benchmarks/sell-spread.md. `BOXOFFICE_BENCH_ONLY=embedded,postgres` runs a subset (and leaves the
 * docs as they are), as does `BOXOFFICE_BENCH_SETUPS=<parts of setup names, comma-separated>`. `BOXOFFICE_BENCH_CHECKOUT=<dir>` runs the instances and the balancer of another built
 * checkout (an earlier commit, for a before/after with the same load generator; the docs are left as they
 * are).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { machineNote } from "./machine-note.js";
import { PurchaseCluster, type WrkResult } from "./purchase-cluster.js";

const POSTGRES_URL = process.env.BOXOFFICE_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const REDIS_URL = process.env.BOXOFFICE_BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const ROUNDS = Number(process.env.BOXOFFICE_BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BOXOFFICE_BENCH_SECONDS ?? 5);
/**
 * Unmeasured load on each spread before the rounds. An instance's CPU per order falls by about a third
 * over its first ~20 s of load (V8 still optimising the sell path; 2026-12-01: 98 -> 70 µs per order
 * per instance on one file's hot event, round after round of 5 s); with 3 s, round 1 of every row ran
 * 20-30 % below round 3.
 */
const WARM_UP_SECONDS = Number(process.env.BOXOFFICE_BENCH_WARM_UP_SECONDS ?? 10);
const ONLY = process.env.BOXOFFICE_BENCH_ONLY?.split(",");
/** Parts of setup names (`BOXOFFICE_BENCH_SETUPS="one file,PostgreSQL"`): a subset, like ONLY. */
const SETUP_NAMES = process.env.BOXOFFICE_BENCH_SETUPS?.split(",");
const CHECKOUT = process.env.BOXOFFICE_BENCH_CHECKOUT;

interface Setup {
  name: string;
  group: "embedded" | "postgres";
  store: (schema: string) => string;
  lock: string;
  layout?: "single" | "per-event";
  /** Which event spreads to measure. */
  spreads: number[];
  /** More flags for `boxoffice lb`. */
  lbArgs?: string[];
  /** More flags for each `boxoffice server`. */
  serverArgs?: string[];
}

const SETUPS: Setup[] = [
  {
    name: "embedded, a file per event",
    group: "embedded",
    store: () => "sqlite",
    lock: "file",
    layout: "per-event",
    spreads: [1, 50],
  },
  {
    name: "embedded, one file",
    group: "embedded",
    store: () => "sqlite",
    lock: "file",
    layout: "single",
    spreads: [1, 50],
  },
  {
    name: "embedded, one file, a lock per event",
    group: "embedded",
    store: () => "sqlite",
    lock: "file",
    layout: "single",
    spreads: [1, 50],
    serverArgs: ["--lock-scope", "event"],
  },
  {
    name: "PostgreSQL + Redis lock",
    group: "postgres",
    store: (schema) => `${POSTGRES_URL}${POSTGRES_URL.includes("?") ? "&" : "?"}schema=${schema}`,
    lock: REDIS_URL,
    spreads: [1, 50],
  },
  {
    name: "embedded, a file per event, lb --placement event",
    group: "embedded",
    store: () => "sqlite",
    lock: "file",
    layout: "per-event",
    spreads: [1, 50],
    lbArgs: ["--placement", "event"],
  },
];

interface Row {
  setup: string;
  events: number;
  results: WrkResult[];
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;

async function measureSetup(setup: Setup): Promise<Row[]> {
  const dir = mkdtempSync(join(tmpdir(), "boxoffice-bench-spread-"));
  const schema = `bench_spread_${process.pid}`;
  const cluster = new PurchaseCluster({
    dir,
    store: setup.store(schema),
    lock: setup.lock,
    layout: setup.layout,
    lbArgs: setup.lbArgs,
    serverArgs: setup.serverArgs,
    root: CHECKOUT,
  });
  try {
    await cluster.start();
    const rows: Row[] = [];
    for (const events of setup.spreads) {
      rows.push({ setup: setup.name, events, results: [] });
    }
    const eventsOf = new Map<number, string[]>();
    for (const spread of setup.spreads) eventsOf.set(spread, await cluster.createEvents(spread));
    for (const row of rows) cluster.sell(eventsOf.get(row.events) ?? [], WARM_UP_SECONDS);
    for (let round = 0; round < ROUNDS; round++) {
      for (const row of round % 2 === 0 ? rows : [...rows].reverse()) {
        const result = cluster.sell(eventsOf.get(row.events) ?? [], SECONDS);
        row.results.push(result);
        console.log(
          `${setup.name.padEnd(28)} ${String(row.events).padStart(2)} events  ` +
            `${result.confirmedPerS.toFixed(0).padStart(6)} confirmed/s  p99 ${result.p99Ms.toFixed(1)} ms  ` +
            `non-2xx ${result.non2xx} errors ${result.errors}  CPU µs/order ` +
            Object.entries(result.cpuUsPerOrder)
              .map(([name, us]) => `${name} ${us.toFixed(0)}`)
              .join(" "),
        );
      }
    }
    return rows;
  } finally {
    await cluster.stop();
    rmSync(dir, { recursive: true, force: true });
    if (setup.group === "postgres") {
      const client = new pg.Client({ connectionString: POSTGRES_URL });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      await client.end();
    }
  }
}

async function main(): Promise<void> {
  const rows: Row[] = [];
  for (const setup of SETUPS) {
    if (ONLY && !ONLY.includes(setup.group)) continue;
    if (SETUP_NAMES && !SETUP_NAMES.some((part) => setup.name.includes(part))) continue;
    // An earlier checkout's balancer may not know the flags this setup adds.
    if (CHECKOUT !== undefined && setup.lbArgs !== undefined) continue;
    rows.push(...(await measureSetup(setup)));
  }
  const rate = (row: Row | undefined) => (row ? median(row.results.map((r) => r.confirmedPerS)) : NaN);
  const find = (setup: string, events: number) =>
    rows.find((row) => row.setup === setup && row.events === events);
  const embeddedHot = rate(find(SETUPS[0]!.name, 1));
  const lines = rows.map((row) => {
    const own = rate(find(row.setup, 1));
    return (
      `| ${row.setup} | ${row.events === 1 ? "one hot event" : `${row.events} events`} | ` +
      `${rate(row).toFixed(0)} | ${median(row.results.map((r) => r.p99Ms)).toFixed(1)} | ` +
      `${(rate(row) / own).toFixed(2)}× | ${(rate(row) / embeddedHot).toFixed(2)}× | ` +
      `${row.results.map((r) => r.confirmedPerS.toFixed(0)).join(", ")} | ` +
      `${row.results.reduce((n, r) => n + r.non2xx + r.errors, 0)} |`
    );
  });
  const markdown = `# Many events at once, and PostgreSQL, through the balancer (issue #18)

Generated by \`npm run bench -- sell-spread\` (bench/sell-spread.bench.ts) on ${new Date().toISOString().slice(0, 10)}.
Two \`boxoffice server\` instances behind \`boxoffice lb\`, wrk with 64 connections for ${SECONDS} s a round,
one-ticket orders with unique Idempotency-Keys and customers, spread evenly over the events; each store's
runs alternate over ${ROUNDS} rounds (median kept), after ${WARM_UP_SECONDS} s of unmeasured load on each
spread (an instance's CPU per order falls by about a third over its first ~20 s of load while V8 optimises).

| store | events | confirmed orders/s | p99 (ms) | × its own hot event | × embedded hot event | each round | non-2xx + errors |
|---|---|---:|---:|---:|---:|---|---:|
${lines.join("\n")}

${machineNote()}
`;
  console.log(markdown);
  if (ONLY === undefined && SETUP_NAMES === undefined && CHECKOUT === undefined)
    writeFileSync("docs/benchmarks/sell-spread.md", markdown);
}

await main();
