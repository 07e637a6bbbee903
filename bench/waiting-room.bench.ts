/**
 * The same on-sale surge with and without a waiting room, on real `boxoffice server` processes sharing the
 * embedded store: BUYERS buyers arrive at once for an event of CAPACITY tickets.
 *
 * - Without a room, every buyer sends its purchase at once, and retries a 503 after its Retry-After
 *   (that is what a client, or a bot, does), until it buys or hears sold_out.
 * - With a room admitting RATE buyers per second, every buyer joins at once, polls when the answer tells
 *   it (pollAfterMs: at its admission time once that is known), and purchases once admitted, with its
 *   tokens.
 *
 * Side by side: the p50/p99 time of the sell path (POST …/orders requests only), the 503 count, the
 * purchase requests that reached the sell path per second at most, and the time until the last buyer had
 * an answer. Results: docs/benchmarks/waiting-room.md. `BENCH_QUICK=1` runs a small surge (to check
 * that it runs).
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { Pool } from "undici";
import { E2E_ADMIN_TOKEN, ServerProcess, stopAll } from "../test/support/server-process.js";
import { svgChart } from "../src/rehearsal/svg-chart.js";
import { machineNote } from "./machine-note.js";

const QUICK = process.env.BENCH_QUICK === "1";
/** Only the default full run writes the results (a study with other settings prints them). */
const STUDY = [
  "BENCH_BUYERS",
  "BENCH_ROOM_RATE",
  "BENCH_ROOM_ONLY",
  "BENCH_COST_ONLY",
  "BENCH_CONNECTIONS",
].some((name) => process.env[name] !== undefined);
const INSTANCES = 3;
/** BENCH_BUYERS: another surge size (the tickets are half of it), e.g. a lower load on a busy machine. */
const BUYERS = Number(process.env.BENCH_BUYERS ?? (QUICK ? 600 : 6000));
const CAPACITY = Math.floor(BUYERS / 2);
/** BENCH_ROOM_ONLY=1: only the surge through the room (when studying the room's timing). */
const ROOM_ONLY = process.env.BENCH_ROOM_ONLY === "1";
/** BENCH_ROOM_RATE: another admission rate, e.g. below what a busy machine's sell path sustains. */
const RATE = Number(process.env.BENCH_ROOM_RATE ?? (QUICK ? 200 : 500));
/**
 * BENCH_PREQUEUE_MS: the room opens this long after it is set up, so that the buyers join its pre-queue
 * and are drawn at the opening (the on-sale's usual shape); 0: it opens at once, every buyer a later arrival.
 */
const PREQUEUE_MS = Number(process.env.BENCH_PREQUEUE_MS ?? 0);
/** BENCH_CONNECTIONS: the load generator's connections per instance (requests beyond them queue in it). */
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 128);
/** Small enough that a surge without a room overflows the sell queues, as a real one would. */
const MAX_QUEUE_PER_EVENT = 256;

interface Answer {
  status: number;
  body: Record<string, unknown>;
  retryAfterSeconds: number;
}

interface Result {
  scenario: string;
  sellRequests: number;
  p50Ms: number;
  p99Ms: number;
  unavailable: number;
  peakSellPerSecond: number;
  /** Queue requests (joins and polls): what waiting cost. */
  queueRequests: number;
  /** p50 and p99 of how long after its admission time a buyer sent its purchase (room only). */
  lateP50Ms: number | null;
  lateP99Ms: number | null;
  sold: number;
  lastAnswerSeconds: number;
  /** Per second since the surge began (room only): what the room admitted and what reached the sell path. */
  series: SecondRow[];
  /** Client-side: how late the poll that got the token was sent after its admission time, p50 / p99 ms. */
  pollSentLateP50Ms: number | null;
  pollSentLateP99Ms: number | null;
  /** Client-side: the queue GET's round trip, p50 / p99 ms. */
  pollP50Ms: number | null;
  pollP99Ms: number | null;
  /** The load generator's own event-loop delay at most (ms): a busy client sends late by this much. */
  clientLoopDelayMaxMs: number;
  /** The second (of the series) in which the last buyer had its join answered. */
  joinsAnsweredSecond: number;
}

interface SecondRow {
  second: number;
  /** Buyers whose admission time falls in this second. */
  admitted: number;
  /** Buyers who got their access token in this second. */
  tokens: number;
  /** Purchase requests sent in this second. */
  sells: number;
  /** Queue requests (joins and polls) sent in this second. */
  polls: number;
  /** p99 round trip of the queue requests sent in this second (ms). */
  pollP99Ms: number;
}

/** Counts per whole second since `originMs` (wall clock). */
class PerSecond {
  readonly counts = new Map<number, number>();
  constructor(readonly originMs: number) {}
  add(atMs: number): void {
    const second = Math.floor((atMs - this.originMs) / 1000);
    this.counts.set(second, (this.counts.get(second) ?? 0) + 1);
  }
  at(second: number): number {
    return this.counts.get(second) ?? 0;
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0
    ? 0
    : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function call(pool: Pool, method: "GET" | "POST" | "PUT", path: string, body?: object, headers = {}) {
  const response = await pool.request({
    method,
    path,
    headers: { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.body.text();
  return {
    status: response.statusCode,
    body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
    retryAfterSeconds: Number(response.headers["retry-after"] ?? 1),
  } satisfies Answer;
}

async function surge(withRoom: boolean, preQueueMs = PREQUEUE_MS): Promise<Result> {
  const dataDir = mkdtempSync(join(tmpdir(), "boxoffice-bench-room-"));
  const servers: ServerProcess[] = [];
  try {
    for (let i = 0; i < INSTANCES; i++) {
      servers.push(
        await ServerProcess.start({
          dataDir,
          instanceId: `bench-room-${i}`,
          args: ["--max-queue-per-event", String(MAX_QUEUE_PER_EVENT)],
        }),
      );
    }
    const pools = servers.map((server) => new Pool(server.url, { connections: CONNECTIONS }));
    const admin = { authorization: `Bearer ${E2E_ADMIN_TOKEN}` };
    const created = await call(
      pools[0]!,
      "POST",
      "/v1/events",
      { name: "Surge", capacity: CAPACITY, maxPerOrder: 1 },
      admin,
    );
    const eventId = created.body.id as string;
    if (withRoom) {
      const room = await call(
        pools[0]!,
        "PUT",
        `/v1/events/${eventId}/waiting-room`,
        preQueueMs > 0
          ? { admissionRatePerSecond: RATE, opensAt: new Date(Date.now() + preQueueMs).toISOString() }
          : { admissionRatePerSecond: RATE },
        admin,
      );
      if (room.status !== 201) throw new Error(`room: ${room.status}`);
    }
    const latenciesMs: number[] = [];
    let queueRequests = 0;
    const originMs = Date.now();
    const admittedAt = new PerSecond(originMs);
    const tokensAt = new PerSecond(originMs);
    const sellsAt = new PerSecond(originMs);
    const pollsAt = new PerSecond(originMs);
    const pollRoundTrips = new Map<number, number[]>();
    const pollsMs: number[] = [];
    const pollSentLateMs: number[] = [];
    const loopDelay = monitorEventLoopDelay({ resolution: 10 });
    loopDelay.enable();
    const queueCall = async (pool: Pool, method: "GET" | "POST", path: string, headers = {}) => {
      const sentMs = Date.now();
      pollsAt.add(sentMs);
      queueRequests++;
      const answer = await call(pool, method, path, method === "POST" ? {} : undefined, headers);
      const tookMs = Date.now() - sentMs;
      pollsMs.push(tookMs);
      const second = Math.floor((sentMs - originMs) / 1000);
      const list = pollRoundTrips.get(second) ?? [];
      list.push(tookMs);
      pollRoundTrips.set(second, list);
      return { answer, sentMs };
    };
    let unavailable = 0;
    let sold = 0;
    const lateMs: number[] = [];
    const startMs = performance.now();
    let lastAnswerMs = 0;
    let joinsAnsweredMs = 0;
    const buy = async (i: number, headers: Record<string, string>) => {
      const pool = pools[i % pools.length]!;
      for (;;) {
        const sentMs = performance.now();
        sellsAt.add(Date.now());
        const answer = await call(
          pool,
          "POST",
          `/v1/events/${eventId}/orders`,
          { customerId: `b-${i}`, quantity: 1 },
          headers,
        );
        latenciesMs.push(performance.now() - sentMs);
        if (answer.status === 503) {
          unavailable++;
          await sleep(answer.retryAfterSeconds * 1000 * (0.5 + Math.random()));
          continue;
        }
        if (answer.status === 201) sold++;
        lastAnswerMs = Math.max(lastAnswerMs, performance.now() - startMs);
        return;
      }
    };
    const buyer = async (i: number) => {
      if (!withRoom) return buy(i, {});
      const pool = pools[i % pools.length]!;
      const queuePath = `/v1/events/${eventId}/queue`;
      let joined = (await queueCall(pool, "POST", queuePath)).answer;
      while (joined.status === 503) {
        await sleep(1000);
        joined = (await queueCall(pool, "POST", queuePath)).answer;
      }
      joinsAnsweredMs = Math.max(joinsAnsweredMs, Date.now());
      const queueToken = joined.body.queueToken as string;
      let answer = joined;
      let sentMs = Date.now();
      while (!answer.body.accessToken) {
        await sleep(
          answer.status === 503 ? answer.retryAfterSeconds * 1000 : Number(answer.body.pollAfterMs),
        );
        ({ answer, sentMs } = await queueCall(pool, "GET", queuePath, { "queue-token": queueToken }));
      }
      // The store's clock is this host's (SQLite), so admitAt and this process's clock compare.
      const admitAtMs = Date.parse(answer.body.admitAt as string);
      admittedAt.add(admitAtMs);
      tokensAt.add(Date.now());
      pollSentLateMs.push(sentMs - admitAtMs);
      // A token handed out before the admission time: come back (buy) when pollAfterMs says, as a
      // client that follows the answer does (one that buys at once waits at the gate until then).
      if (answer.body.state !== "admitted") await sleep(Number(answer.body.pollAfterMs));
      lateMs.push(Date.now() - admitAtMs);
      return buy(i, { "queue-token": queueToken, "access-token": answer.body.accessToken as string });
    };
    await Promise.all(Array.from({ length: BUYERS }, (_, i) => buyer(i)));
    await Promise.all(pools.map((pool) => pool.close()));
    loopDelay.disable();
    const sorted = latenciesMs.sort((a, b) => a - b);
    const lastSecond = Math.max(...sellsAt.counts.keys(), ...admittedAt.counts.keys());
    const series: SecondRow[] = withRoom
      ? Array.from({ length: lastSecond + 1 }, (_, second) => ({
          second,
          admitted: admittedAt.at(second),
          tokens: tokensAt.at(second),
          sells: sellsAt.at(second),
          polls: pollsAt.at(second),
          pollP99Ms: percentile(
            (pollRoundTrips.get(second) ?? []).sort((a, b) => a - b),
            99,
          ),
        }))
      : [];
    const sortedOrNull = (values: number[], p: number) =>
      withRoom
        ? percentile(
            [...values].sort((a, b) => a - b),
            p,
          )
        : null;
    return {
      scenario: withRoom
        ? `waiting room at ${RATE}/s${preQueueMs > 0 ? `, joined ${preQueueMs / 1000} s before it opened` : ""}`
        : "no waiting room",
      sellRequests: sorted.length,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      unavailable,
      peakSellPerSecond: Math.max(...sellsAt.counts.values()),
      queueRequests,
      lateP50Ms: withRoom
        ? percentile(
            lateMs.sort((a, b) => a - b),
            50,
          )
        : null,
      lateP99Ms: withRoom ? percentile(lateMs, 99) : null,
      sold,
      lastAnswerSeconds: lastAnswerMs / 1000,
      series,
      pollSentLateP50Ms: sortedOrNull(pollSentLateMs, 50),
      pollSentLateP99Ms: sortedOrNull(pollSentLateMs, 99),
      pollP50Ms: sortedOrNull(pollsMs, 50),
      pollP99Ms: sortedOrNull(pollsMs, 99),
      clientLoopDelayMaxMs: loopDelay.max / 1e6,
      joinsAnsweredSecond: Math.floor((joinsAnsweredMs - originMs) / 1000),
    };
  } finally {
    await stopAll();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** The CPU time (ms) a process has used, from /proc (Linux); null elsewhere. */
function cpuMsOf(pid: number | undefined): number | null {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    // utime and stime, fields 14 and 15 of stat (11 and 12 after the name), in clock ticks (100 Hz).
    return (Number(fields[11]) + Number(fields[12])) * 10;
  } catch {
    return null;
  }
}

interface Cost {
  /** Server CPU per request, µs: a waiting buyer's poll, and a purchase (no room). */
  pollMicros: number | null;
  purchaseMicros: number | null;
}

/**
 * What one waiting buyer's poll costs the server, next to one purchase: one instance, COST_REQUESTS polls
 * of buyers still waiting (a room admitting 1 per second), then as many purchases of an event without a
 * room, COST_CONCURRENCY at a time; the instance's CPU time from /proc over each.
 */
async function costs(): Promise<Cost> {
  const COST_REQUESTS = QUICK ? 500 : 2000;
  const COST_CONCURRENCY = 16;
  const dataDir = mkdtempSync(join(tmpdir(), "boxoffice-bench-room-cost-"));
  try {
    const server = await ServerProcess.start({ dataDir, instanceId: "bench-room-cost" });
    const pool = new Pool(server.url, { connections: COST_CONCURRENCY });
    const admin = { authorization: `Bearer ${E2E_ADMIN_TOKEN}` };
    const event = async (capacity: number) =>
      (await call(pool, "POST", "/v1/events", { name: "Cost", capacity, maxPerOrder: 1 }, admin)).body
        .id as string;
    const inParallel = async (count: number, work: (i: number) => Promise<unknown>) => {
      let next = 0;
      await Promise.all(
        Array.from({ length: COST_CONCURRENCY }, async () => {
          while (next < count) await work(next++);
        }),
      );
    };
    const measured = async (work: () => Promise<void>) => {
      await work(); // warm-up round: JIT, caches
      const before = cpuMsOf(server.pid);
      await work();
      const after = cpuMsOf(server.pid);
      return before === null || after === null ? null : ((after - before) * 1000) / COST_REQUESTS;
    };
    const roomEvent = await event(10);
    await call(pool, "PUT", `/v1/events/${roomEvent}/waiting-room`, { admissionRatePerSecond: 1 }, admin);
    const tokens: string[] = [];
    await inParallel(COST_REQUESTS, async () => {
      const joined = await call(pool, "POST", `/v1/events/${roomEvent}/queue`, {});
      tokens.push(joined.body.queueToken as string);
    });
    const pollMicros = await measured(() =>
      inParallel(COST_REQUESTS, async (i) => {
        await call(pool, "GET", `/v1/events/${roomEvent}/queue`, undefined, { "queue-token": tokens[i]! });
      }),
    );
    const plainEvent = await event(2 * COST_REQUESTS);
    const purchaseMicros = await measured(() =>
      inParallel(COST_REQUESTS, async (i) => {
        await call(pool, "POST", `/v1/events/${plainEvent}/orders`, { customerId: `c-${i}`, quantity: 1 });
      }),
    );
    await pool.close();
    return { pollMicros, purchaseMicros };
  } finally {
    await stopAll();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

/** BENCH_COST_ONLY=1: only the CPU cost of a poll and of a purchase. */
const COST_ONLY = process.env.BENCH_COST_ONLY === "1";
/** The full run's second surge through the room: the buyers join its pre-queue, drawn at the opening. */
const FULL_RUN_PREQUEUE_MS = 8000;
const results = COST_ONLY
  ? []
  : ROOM_ONLY
    ? [await surge(true)]
    : [await surge(false), await surge(true), await surge(true, FULL_RUN_PREQUEUE_MS)];
/** Within this fraction of the admissions, every second: the sell path "follows the admission rate". */
const TOLERANCE = 0.2;

interface Verdict {
  pass: boolean;
  /** The seconds judged (see verdictOf). */
  from: number;
  to: number;
  worst: SecondRow | null;
  /** Of every second with admissions (the first ones too), how many were within the tolerance. */
  within: number;
  seconds: number;
  line: string;
}

const ratio = (row: SecondRow) => (row.admitted === 0 ? Infinity : row.sells / row.admitted);
const withinTolerance = (row: SecondRow) => Math.abs(ratio(row) - 1) <= TOLERANCE;

/** The first seconds of admissions are not judged: the first is a fraction, the next the start. */
const SECONDS_NOT_JUDGED = 2;

/**
 * Whether sell requests per second followed the admissions per second within ±TOLERANCE, in every
 * second but the first SECONDS_NOT_JUDGED of admissions and the last (a fraction of a second).
 */
function verdictOf(r: Result): Verdict {
  const admitting = r.series.filter((row) => row.admitted > 0);
  const lastWhole = (admitting.at(-1)?.second ?? 0) - 1;
  const from = (admitting[0]?.second ?? 0) + SECONDS_NOT_JUDGED;
  const judged = r.series.filter((row) => row.second >= from && row.second <= lastWhole);
  const worst = judged.reduce<SecondRow | null>(
    (w, row) => (w === null || Math.abs(ratio(row) - 1) > Math.abs(ratio(w) - 1) ? row : w),
    null,
  );
  const pass = judged.length > 0 && judged.every(withinTolerance);
  const within = admitting.filter(withinTolerance).length;
  const line =
    `follows the admission rate: ${pass ? "PASS" : "FAIL"}: sell requests per second within ±${TOLERANCE * 100}% ` +
    `of admissions per second in seconds ${from}–${lastWhole}` +
    (worst
      ? ` (worst: second ${worst.second}, ${worst.sells} sell requests for ${worst.admitted} admitted)`
      : "") +
    `; ${within} of all ${admitting.length} seconds with admissions within ±${TOLERANCE * 100}%; ` +
    `every join answered by second ${r.joinsAnsweredSecond}`;
  return { pass, from, to: lastWhole, worst, within, seconds: admitting.length, line };
}

const seriesTable = (r: Result) =>
  [
    "| second | admitted (by admitAt) | tokens handed out | sell requests | sells ÷ admitted | queue requests | queue p99 ms |",
    "|---:|---:|---:|---:|---:|---:|---:|",
    ...r.series.map(
      (row) =>
        `| ${row.second} | ${row.admitted} | ${row.tokens} | ${row.sells} | ${row.admitted === 0 ? "—" : ratio(row).toFixed(2)} | ${row.polls} | ${row.pollP99Ms.toFixed(0)} |`,
    ),
  ].join("\n");

const roomResults = results.filter((r) => r.series.length > 0);
const verdicts = roomResults.map(verdictOf);
/** Where a late purchase could come from: the poll, the servers' answers, the load generator itself. */
const diagnosticsOf = (r: Result) =>
  `The answer that gave a buyer its token was asked for ${r.pollSentLateP50Ms} / ${r.pollSentLateP99Ms} ms after its admission time ` +
  `(p50 / p99; negative: before); a queue request took ${r.pollP50Ms} / ${r.pollP99Ms} ms to answer; ` +
  `the load generator's event loop was late by ${r.clientLoopDelayMaxMs.toFixed(0)} ms at most.`;
for (const [i, r] of roomResults.entries()) {
  console.log(`${r.scenario}: ${diagnosticsOf(r)}`);
  console.log(seriesTable(r));
  console.log(verdicts[i]!.line);
}
const table = [
  "| scenario | sell requests | p50 ms | p99 ms | 503s | sell requests/s at peak | queue requests | purchase sent after admitAt p50 / p99 ms | sold | last answer (s) |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ...results.map(
    (r) =>
      `| ${r.scenario} | ${r.sellRequests} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} | ${r.unavailable} | ${r.peakSellPerSecond} | ${r.queueRequests} | ${r.lateP50Ms === null ? "—" : `${r.lateP50Ms.toFixed(0)} / ${r.lateP99Ms!.toFixed(0)}`} | ${r.sold} | ${r.lastAnswerSeconds.toFixed(1)} |`,
  ),
].join("\n");
console.log(table);
const cost = COST_ONLY || !ROOM_ONLY ? await costs() : { pollMicros: null, purchaseMicros: null };
const micros = (value: number | null) => (value === null ? "—" : `${value.toFixed(0)} µs`);
const costLine = `Server CPU per request (one instance, ${QUICK ? 500 : 2000} each, 16 at a time): a waiting buyer's poll ${micros(cost.pollMicros)}, a purchase (no room) ${micros(cost.purchaseMicros)}.`;
console.log(costLine);

/** The per-second series as a chart: what the room admitted, the tokens it handed out, what reached the sell path. */
const chartOf = (r: Result) =>
  svgChart({
    title: `${r.scenario}: admissions and sell requests per second`,
    xLabel: "seconds since the buyers arrived",
    yLabel: "per second",
    x: r.series.map((row) => row.second),
    series: [
      { name: "admitted (by admitAt)", color: "#1f77b4", values: r.series.map((row) => row.admitted) },
      { name: "tokens handed out", color: "#aaaaaa", values: r.series.map((row) => row.tokens) },
      { name: "sell requests", color: "#d62728", values: r.series.map((row) => row.sells) },
    ],
  });

if (!QUICK && !STUDY) {
  mkdirSync("docs/benchmarks", { recursive: true });
  roomResults.forEach((r, i) =>
    writeFileSync(`docs/benchmarks/waiting-room${i === 0 ? "" : "-pre-queue"}.svg`, chartOf(r)),
  );
  const perScenario = roomResults
    .map(
      (r, i) => `## ${r.scenario}

**${verdicts[i]!.line}.**

${diagnosticsOf(r)}

![admissions, tokens and sell requests per second](waiting-room${i === 0 ? "" : "-pre-queue"}.svg)

Per second since the buyers arrived (admissions counted by their admission time):

${seriesTable(r)}
`,
    )
    .join("\n");
  writeFileSync(
    "docs/benchmarks/waiting-room.md",
    `# The on-sale surge with and without a waiting room

${BUYERS} buyers arrive at once for ${CAPACITY} tickets, on ${INSTANCES} \`boxoffice server\` processes sharing
the embedded store (SQLite, a file per event), \`--max-queue-per-event ${MAX_QUEUE_PER_EVENT}\`. Without a
room every buyer purchases at once and retries a 503 after its Retry-After; with a room admitting ${RATE}/s
every buyer joins at once (into a room that is open, or into its pre-queue ${FULL_RUN_PREQUEUE_MS / 1000} s before
it opens), polls when the answer's \`pollAfterMs\` says, and purchases when it says once it holds the
access token (handed out with the admission time, up to 3 s before it). "Sell requests" are POST …/orders
only; the load generator is one Node process with ${BUYERS} buyers on the same cores.

${table}

${costLine}

"Follows the admission rate" means: sell requests in every second within ±${TOLERANCE * 100}% of the
admissions of that second, but for the first ${SECONDS_NOT_JUDGED} seconds of admissions and the last (a fraction of a second).

${perScenario}
${machineNote()}
`,
  );
}
