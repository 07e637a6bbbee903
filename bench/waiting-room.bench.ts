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
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Pool } from "undici";
import { E2E_ADMIN_TOKEN, ServerProcess, stopAll } from "../test/support/server-process.js";
import { machineNote } from "./machine-note.js";

const QUICK = process.env.BENCH_QUICK === "1";
const INSTANCES = 3;
const BUYERS = QUICK ? 600 : 6000;
const CAPACITY = QUICK ? 300 : 3000;
/** BENCH_ROOM_RATE: another admission rate, e.g. below what a busy machine's sell path sustains. */
const RATE = Number(process.env.BENCH_ROOM_RATE ?? (QUICK ? 200 : 500));
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
  /** p50 and p99 of how long after its admission time a buyer had its access token (room only). */
  lateP50Ms: number | null;
  lateP99Ms: number | null;
  sold: number;
  lastAnswerSeconds: number;
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

async function surge(withRoom: boolean): Promise<Result> {
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
    const pools = servers.map((server) => new Pool(server.url, { connections: 128 }));
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
        { admissionRatePerSecond: RATE },
        admin,
      );
      if (room.status !== 201) throw new Error(`room: ${room.status}`);
    }
    const latenciesMs: number[] = [];
    const sellSeconds = new Map<number, number>();
    let unavailable = 0;
    let sold = 0;
    let queueRequests = 0;
    const lateMs: number[] = [];
    const startMs = performance.now();
    let lastAnswerMs = 0;
    const buy = async (i: number, headers: Record<string, string>) => {
      const pool = pools[i % pools.length]!;
      for (;;) {
        const sentMs = performance.now();
        const second = Math.floor((sentMs - startMs) / 1000);
        sellSeconds.set(second, (sellSeconds.get(second) ?? 0) + 1);
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
      let joined = await call(pool, "POST", `/v1/events/${eventId}/queue`, {});
      queueRequests++;
      while (joined.status === 503) {
        await sleep(1000);
        joined = await call(pool, "POST", `/v1/events/${eventId}/queue`, {});
        queueRequests++;
      }
      const queueToken = joined.body.queueToken as string;
      let answer = joined;
      while (!answer.body.accessToken) {
        await sleep(
          answer.status === 503 ? answer.retryAfterSeconds * 1000 : Number(answer.body.pollAfterMs),
        );
        answer = await call(pool, "GET", `/v1/events/${eventId}/queue`, undefined, {
          "queue-token": queueToken,
        });
        queueRequests++;
      }
      // The store's clock is this host's (SQLite): how late the buyer learnt it was in.
      lateMs.push(Date.now() - Date.parse(answer.body.admitAt as string));
      return buy(i, { "queue-token": queueToken, "access-token": answer.body.accessToken as string });
    };
    await Promise.all(Array.from({ length: BUYERS }, (_, i) => buyer(i)));
    await Promise.all(pools.map((pool) => pool.close()));
    const sorted = latenciesMs.sort((a, b) => a - b);
    return {
      scenario: withRoom ? `waiting room at ${RATE}/s` : "no waiting room",
      sellRequests: sorted.length,
      p50Ms: percentile(sorted, 50),
      p99Ms: percentile(sorted, 99),
      unavailable,
      peakSellPerSecond: Math.max(...sellSeconds.values()),
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
    };
  } finally {
    await stopAll();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

const results = [await surge(false), await surge(true)];
const table = [
  "| scenario | sell requests | p50 ms | p99 ms | 503s | sell requests/s at peak | queue requests | token after admission p50 / p99 ms | sold | last answer (s) |",
  "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
  ...results.map(
    (r) =>
      `| ${r.scenario} | ${r.sellRequests} | ${r.p50Ms.toFixed(1)} | ${r.p99Ms.toFixed(1)} | ${r.unavailable} | ${r.peakSellPerSecond} | ${r.queueRequests} | ${r.lateP50Ms === null ? "—" : `${r.lateP50Ms.toFixed(0)} / ${r.lateP99Ms!.toFixed(0)}`} | ${r.sold} | ${r.lastAnswerSeconds.toFixed(1)} |`,
  ),
].join("\n");
console.log(table);
if (!QUICK) {
  mkdirSync("docs/benchmarks", { recursive: true });
  writeFileSync(
    "docs/benchmarks/waiting-room.md",
    `# The on-sale surge with and without a waiting room

${BUYERS} buyers arrive at once for ${CAPACITY} tickets, on ${INSTANCES} \`boxoffice server\` processes sharing
the embedded store (SQLite, a file per event), \`--max-queue-per-event ${MAX_QUEUE_PER_EVENT}\`. Without a
room every buyer purchases at once and retries a 503 after its Retry-After; with a room admitting ${RATE}/s
every buyer joins at once, polls, and purchases once admitted. "Sell requests" are POST …/orders only.

${table}

${machineNote()}
`,
  );
}
