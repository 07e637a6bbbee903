/**
 * Many events at once, embedded (issue #18): confirmed orders per second through `boxoffice lb` in front
 * of 2 `boxoffice server` instances sharing one data directory (SQLite, durability full, file lock per
 * event), wrk at 64 connections, one-ticket orders from customers of their own, for:
 * - one hot event (a file per event, the default);
 * - 50 events, a file per event (the default): each tick's events commit in the commit threads;
 * - 50 events, one file (`--layout single`): each tick's events commit in one transaction.
 * Every row is measured in the same run, in rounds that take turns (median of the rounds), so the ratios
 * to the hot event hold even on a busy machine. Writes docs/benchmarks/many-events.md.
 *
 * BOXOFFICE_BENCH_CHECKOUT=<dir> runs the instances and the balancer of another built checkout (before
 * and after a change, back to back); BOXOFFICE_BENCH_EXTRA="--commit-threads 0" adds instance flags.
 * Either prints the table and leaves docs/benchmarks/many-events.md as it was.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import http from "node:http";
import { cpus, totalmem, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../test/support/backend-fixture.js";
import { machineNote } from "./machine-note.js";

const ROUNDS = Number(process.env.BOXOFFICE_BENCH_ROUNDS ?? 3);
const SECONDS = Number(process.env.BOXOFFICE_BENCH_SECONDS ?? 8);
const WARM_UP_SECONDS = 3;
const CONNECTIONS = 64;
const SPREAD = 50;
const ADMIN_TOKEN = "bench-admin-token-0123456789";
const CHECKOUT = process.env.BOXOFFICE_BENCH_CHECKOUT;
const EXTRA = (process.env.BOXOFFICE_BENCH_EXTRA ?? "").split(" ").filter(Boolean);
const CLI = CHECKOUT
  ? resolve(CHECKOUT, "dist/src/cli/main.js")
  : fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

interface Setup {
  name: string;
  layout: "single" | "per-event";
  events: number;
}

const SETUPS: Setup[] = [
  { name: "one hot event (a file per event)", layout: "per-event", events: 1 },
  { name: `${SPREAD} events, a file per event (default)`, layout: "per-event", events: SPREAD },
  { name: `${SPREAD} events, one file (--layout single)`, layout: "single", events: SPREAD },
];

interface Row {
  setup: string;
  ordersPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  non2xx: number;
  meanBatch: number;
}

interface Running {
  url: string;
  instances: string[];
  stop: () => Promise<void>;
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
  return exited.then(() => clearTimeout(timer));
}

function request(url: string, method: string, path: string, body?: unknown): Promise<string> {
  return new Promise((done, fail) => {
    const req = http.request(
      `${url}${path}`,
      {
        method,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      },
      (res) => {
        let text = "";
        res.on("data", (chunk: Buffer) => (text += chunk.toString()));
        res.on("end", () => ((res.statusCode ?? 500) < 300 ? done(text) : fail(new Error(text))));
      },
    );
    req.on("error", fail);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

async function waitReady(url: string, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 300; attempt++) {
    if (child.exitCode !== null) throw new Error(`${url} exited with ${child.exitCode}`);
    const ready = await request(url, "GET", "/ready").then(
      () => true,
      () => false,
    );
    if (ready) return;
    await new Promise((done) => setTimeout(done, 100));
  }
  throw new Error(`${url} never became ready`);
}

async function start(setup: Setup, dataDir: string): Promise<Running> {
  const children: ChildProcess[] = [];
  const stop = async () => {
    await Promise.all(children.map(stopChild));
  };
  try {
    const instances: string[] = [];
    for (const id of ["s1", "s2"]) {
      const port = await freePort();
      const child = spawn(
        process.execPath,
        [
          CLI,
          "server",
          ...["--port", String(port), "--data", dataDir, "--instance-id", id, "--layout", setup.layout],
          ...EXTRA,
        ],
        {
          stdio: ["ignore", "ignore", "inherit"],
          env: { ...process.env, BOXOFFICE_ADMIN_TOKEN: ADMIN_TOKEN },
        },
      );
      children.push(child);
      const url = `http://127.0.0.1:${port}`;
      await waitReady(url, child);
      instances.push(url);
    }
    const balancer = spawn(
      process.execPath,
      [
        CLI,
        "lb",
        "--port",
        "0",
        ...instances.flatMap((url) => ["--backend", url]),
        ...["--max-active-per-backend", "64"],
      ],
      { stdio: ["ignore", "pipe", "inherit"] },
    );
    children.push(balancer);
    const url = await new Promise<string>((done, fail) => {
      let output = "";
      balancer.stdout!.on("data", (chunk: Buffer) => {
        output += chunk.toString();
        const match = /listening on http:\/\/[^:]+:(\d+)/.exec(output);
        if (match) done(`http://127.0.0.1:${match[1]}`);
      });
      balancer.once("exit", (code) => fail(new Error(`balancer exited with ${code}`)));
    });
    return { url, instances, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}

function parseLatencyMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!match) return NaN;
  const value = Number(match[1]);
  return match[2] === "us" ? value / 1000 : match[2] === "s" ? value * 1000 : value;
}

let wrkRun = 0;

/** wrk on the balancer, each request a one-ticket order for the next event in turn. */
function runWrk(url: string, script: string, events: readonly string[], seconds: number) {
  const result = spawnSync(
    "wrk",
    [
      "-t1",
      `-c${CONNECTIONS}`,
      `-d${seconds}s`,
      "--latency",
      "-s",
      script,
      url,
      "--",
      `r${wrkRun++}`,
      ...events,
    ],
    { encoding: "utf8", timeout: (seconds + 30) * 1000 },
  );
  if (result.status !== 0) throw new Error(`wrk failed: ${result.stderr}`);
  const output = result.stdout;
  const requests = Number(/(\d+) requests in/.exec(output)?.[1] ?? NaN);
  const elapsed = /requests in ([\d.]+)(ms|s|m)/.exec(output);
  const elapsedS = elapsed
    ? Number(elapsed[1]) * (elapsed[2] === "ms" ? 0.001 : elapsed[2] === "m" ? 60 : 1)
    : seconds;
  const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(output)?.[1] ?? 0);
  const failure = /first failure: (.+)/.exec(output)?.[1];
  if (non2xx > 0 && failure) console.log(`  first non-2xx answer: ${failure.slice(0, 300)}`);
  return {
    ordersPerSecond: (requests - non2xx) / elapsedS,
    p50Ms: parseLatencyMs(/^\s+50%\s+(\S+)/m.exec(output)?.[1] ?? ""),
    p99Ms: parseLatencyMs(/^\s+99%\s+(\S+)/m.exec(output)?.[1] ?? ""),
    non2xx,
  };
}

/** Sales per sell-path tick (one lock round, one store call) over both instances, from /metrics. */
async function batchTotals(instances: readonly string[]): Promise<{ sum: number; count: number }> {
  let sum = 0;
  let count = 0;
  for (const url of instances) {
    const metrics = await request(url, "GET", "/metrics");
    sum += Number(/^boxoffice_sell_batch_size_sum\{[^}]*\} ([\d.e+]+)/m.exec(metrics)?.[1] ?? 0);
    count += Number(/^boxoffice_sell_batch_size_count\{[^}]*\} (\d+)/m.exec(metrics)?.[1] ?? 0);
  }
  return { sum, count };
}

const median = (values: number[]) => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "boxoffice-bench-many-"));
  const script = join(dir, "orders.lua");
  writeFileSync(
    script,
    [
      "local threads = {}",
      "function setup(thread) table.insert(threads, thread) end",
      "prefix, counter, failed, sample, events = 'x', 0, 0, '', {}",
      "function init(args)",
      "  prefix = args[1] or 'x'",
      "  for i = 2, #args do table.insert(events, args[i]) end",
      "end",
      "function request()",
      "  counter = counter + 1",
      "  local event = events[(counter % #events) + 1]",
      `  return wrk.format("POST", "/v1/events/" .. event .. "/orders", { ["Content-Type"] = "application/json" },`,
      "    '{\"customerId\":\"' .. prefix .. '-' .. counter .. '\",\"quantity\":1}')",
      "end",
      "function response(status, headers, body)",
      "  if status ~= 201 then failed = failed + 1; if sample == '' then sample = status .. ' ' .. body end end",
      "end",
      "function done()",
      "  for _, t in ipairs(threads) do io.write('first failure: ', tostring(t:get('sample')), '\\n') end",
      "end",
    ].join("\n"),
  );
  const running: { setup: Setup; target: Running; events: string[] }[] = [];
  const rounds = new Map<
    string,
    { rate: number[]; p50: number[]; p99: number[]; non2xx: number; batch: number[] }
  >();
  try {
    for (const setup of SETUPS) {
      const dataDir = join(dir, `data-${running.length}`);
      mkdirSync(dataDir);
      const target = await start(setup, dataDir);
      running.push({ setup, target, events: [] });
      rounds.set(setup.name, { rate: [], p50: [], p99: [], non2xx: 0, batch: [] });
    }
    // Every run sells into events of its own, each with room for far more than a run sells.
    const freshEvents = async (entry: (typeof running)[number]) => {
      const events: string[] = [];
      for (let i = 0; i < entry.setup.events; i++) {
        const text = await request(entry.target.url, "POST", "/v1/events", {
          name: `Bench ${i}`,
          capacity: 1_000_000,
          maxPerCustomer: 8,
        });
        events.push((JSON.parse(text) as { id: string }).id);
      }
      return events;
    };
    for (const entry of running) runWrk(entry.target.url, script, await freshEvents(entry), WARM_UP_SECONDS);
    for (let round = 0; round < ROUNDS; round++) {
      for (const entry of running) {
        const events = await freshEvents(entry);
        const before = await batchTotals(entry.target.instances);
        const result = runWrk(entry.target.url, script, events, SECONDS);
        const after = await batchTotals(entry.target.instances);
        const row = rounds.get(entry.setup.name)!;
        row.rate.push(result.ordersPerSecond);
        row.p50.push(result.p50Ms);
        row.p99.push(result.p99Ms);
        row.non2xx += result.non2xx;
        row.batch.push((after.sum - before.sum) / Math.max(1, after.count - before.count));
        console.log(
          `round ${round + 1} ${entry.setup.name.padEnd(44)} ${result.ordersPerSecond.toFixed(0).padStart(6)}/s ` +
            `p50 ${result.p50Ms.toFixed(1)} ms p99 ${result.p99Ms.toFixed(1)} ms non-2xx ${result.non2xx}`,
        );
      }
    }
  } finally {
    await Promise.all(running.map((entry) => entry.target.stop()));
    rmSync(dir, { recursive: true, force: true });
  }

  const rows: Row[] = SETUPS.map((setup) => {
    const r = rounds.get(setup.name)!;
    return {
      setup: setup.name,
      ordersPerSecond: median(r.rate),
      p50Ms: median(r.p50),
      p99Ms: median(r.p99),
      non2xx: r.non2xx,
      meanBatch: median(r.batch),
    };
  });
  const hot = rows[0]!.ordersPerSecond;
  const table = [
    "| scenario | confirmed orders/s | vs hot event | p50 ms | p99 ms | sales per tick | non-2xx |",
    "|---|---:|---:|---:|---:|---:|---:|",
    ...rows.map(
      (row) =>
        `| ${row.setup} | ${row.ordersPerSecond.toFixed(0)} | ${(row.ordersPerSecond / hot).toFixed(2)}× | ` +
        `${row.p50Ms.toFixed(1)} | ${row.p99Ms.toFixed(1)} | ${row.meanBatch.toFixed(1)} | ${row.non2xx} |`,
    ),
  ].join("\n");
  console.log(table);
  if (CHECKOUT !== undefined || EXTRA.length > 0) {
    console.log("(another checkout or extra flags: docs/benchmarks/many-events.md is left as it was)");
    return;
  }
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "CPU"}, ${(totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}`;
  const markdown = `# Benchmark: many events at once, embedded

Run: ${new Date().toISOString()} on ${machine}. \`npm run bench -- many-events\` (bench/many-events.bench.ts).

${machineNote()}

What was measured: \`boxoffice lb\` in front of 2 \`boxoffice server\` instances sharing one data directory
(SQLite, durability full: every sale is fsynced before its 201; the file lock, one lock per event), wrk
with one thread and ${CONNECTIONS} keep-alive connections, one-ticket orders from customers of their own, each
request to the next event in turn. Each row is the median of ${ROUNDS} rounds of ${SECONDS} s, the rows taking
turns within each round (after a ${WARM_UP_SECONDS} s warm-up of each); every round sells into fresh events.
"Sales per tick" is what one sell-path tick (one lock round, one store call) carried, over both instances.

${table}
`;
  mkdirSync("docs/benchmarks", { recursive: true });
  writeFileSync("docs/benchmarks/many-events.md", markdown);
  console.log("wrote docs/benchmarks/many-events.md");
}

await main();
