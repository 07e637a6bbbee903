/**
 * `npm run bench -- locks`: purchases per second and p99 latency of the sell path's lock + write
 * (no HTTP), for every lock provider × scope, on 1 hot event and spread over 50 events; then the two designs'
 * trade-off table: global versus per-event lock, one database file versus a file per event.
 *
 * Part 1 (the lock alone): 4 seller processes × 4 concurrent buyers, each buyer taking the lock, writing
 * one purchase through the store and releasing. Part 2 (the real sell path): 2 `boxoffice server`
 * processes on one data directory, under closed-loop HTTP load, where each server batches the waiting
 * purchases of an event under one lock. SQLite runs with durability "full" (one fsync per commit).
 * Redis servers are our own (ports 16380–16382, as the lock contract test: do not run both at once),
 * never the shared one; PostgreSQL rows use a schema of their own, dropped afterwards.
 * Writes docs/benchmarks/locks.md.
 */
import { fork } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import { Pool } from "undici";
import { planEvent } from "../src/domain/event.js";
import { newEventId } from "../src/domain/ids.js";
import type { Order } from "../src/domain/sale.js";
import { createLockProvider, type LockConfig } from "../src/lock/create-lock-provider.js";
import { lockKeyFor, type LockScope } from "../src/lock/lock-provider.js";
import { createStore, type StoreConfig } from "../src/store/create-store.js";
import { startRedisServers } from "../test/support/redis-servers.js";
import { ServerProcess, stopAll } from "../test/support/server-process.js";
import { postgresSkip, TEST_POSTGRES_URL } from "../test/support/services.js";
import { callInstance } from "./instance-call.js";
import { machineNote } from "./machine-note.js";

const SELLERS = 4;
const BUYERS_PER_SELLER = 4;
const ROW_MS = 1000;
const HTTP_SERVERS = 2;
const HTTP_BUYERS = 32;
const LOCK = { leaseMs: 5000, waitMs: 5000 };

type StoreKind = "sqlite, one file" | "sqlite, file per event" | "postgres";

interface SellerRequest {
  lock: LockConfig;
  store: StoreConfig;
  scope: LockScope;
  eventIds: string[];
  durationMs: number;
}

interface SellerResult {
  sold: number;
  errors: Record<string, number>;
  latenciesMs: number[];
}

const codeOf = (error: unknown): string => String((error as { code?: unknown }).code ?? error);
const count = (tally: Record<string, number>, code: string, n = 1): void => {
  tally[code] = (tally[code] ?? 0) + n;
};

/** A seller process: BUYERS_PER_SELLER loops of lock → one purchase → release, until the time is up. */
async function seller(request: SellerRequest): Promise<SellerResult> {
  const store = await createStore(request.store);
  await store.init();
  const lock = await createLockProvider(request.lock);
  await lock.init();
  const result: SellerResult = { sold: 0, errors: {}, latenciesMs: [] };
  const endMs = performance.now() + request.durationMs;
  let n = 0;
  const buyer = async (): Promise<void> => {
    while (performance.now() < endMs) {
      const eventId = request.eventIds[Math.floor(Math.random() * request.eventIds.length)]!;
      const startedMs = performance.now();
      const purchase = {
        type: "purchase" as const,
        customerId: `bench-${process.pid}-${n++}`,
        selection: { quantity: 1, seats: null },
        idempotency: null,
      };
      try {
        const [outcome] = await lock.withLock(lockKeyFor(request.scope, eventId), LOCK, (guard) =>
          store.execute(eventId, [purchase], guard, new Date()),
        );
        if (outcome?.ok) result.sold += (outcome.value as Order).quantity;
        else count(result.errors, outcome?.refusal.code ?? "no outcome");
        result.latenciesMs.push(performance.now() - startedMs);
      } catch (error) {
        count(result.errors, codeOf(error));
      }
    }
  };
  await Promise.all(Array.from({ length: BUYERS_PER_SELLER }, buyer));
  await lock.close();
  await store.close();
  return result;
}

function runSeller(request: SellerRequest): Promise<SellerResult> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ["seller"], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    child.once("message", (result: SellerResult) => {
      resolve(result);
      child.disconnect();
    });
    child.once("exit", (code) => {
      if (code !== 0) reject(new Error(`seller exited with ${code}`));
    });
    child.send(request);
  });
}

function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface Row {
  lock: string;
  store: StoreKind;
  scope: LockScope;
  events: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: string;
}

function storeConfigFor(kind: StoreKind, dir: string, schema: string): StoreConfig {
  if (kind === "postgres") {
    const url = `${TEST_POSTGRES_URL}?schema=${schema}`;
    return { kind: "postgres", url, poolSize: BUYERS_PER_SELLER, statementTimeoutMs: 5000 };
  }
  const layout = kind === "sqlite, one file" ? "single" : "per-event";
  return { kind: "sqlite", dir, layout, durability: "full", maxOpenEvents: 64 };
}

async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
  } finally {
    await client.end();
  }
}

/** One row: a fresh store with `events` events, SELLERS processes buying for ROW_MS. */
async function measure(
  lockName: string,
  lock: LockConfig,
  storeKind: StoreKind,
  scope: LockScope,
  events: number,
): Promise<Row> {
  const dir = mkdtempSync(join(os.tmpdir(), "boxoffice-bench-locks-"));
  const schema = `bench_locks_${randomBytes(4).toString("hex")}`;
  try {
    const storeConfig = storeConfigFor(storeKind, dir, schema);
    const store = await createStore(storeConfig);
    await store.init();
    const eventIds: string[] = [];
    for (let i = 0; i < events; i++) {
      const plan = planEvent({ name: `Bench ${i}`, capacity: 1_000_000 }, newEventId(), new Date());
      eventIds.push((await store.createEvent(plan)).id);
    }
    const lockConfig = lock.kind === "file" ? { ...lock, path: join(dir, "locks.sqlite") } : lock;
    const results = await Promise.all(
      Array.from({ length: SELLERS }, () =>
        runSeller({ lock: lockConfig, store: storeConfig, scope, eventIds, durationMs: ROW_MS }),
      ),
    );
    let sold = 0;
    for (const id of eventIds) sold += (await store.getEvent(id))?.sold ?? 0;
    await store.close();
    const claimed = results.reduce((sum, result) => sum + result.sold, 0);
    if (claimed !== sold) throw new Error(`sellers claim ${claimed} tickets, the store has ${sold}`);
    const latencies = results.flatMap((result) => result.latenciesMs).sort((a, b) => a - b);
    const errors: Record<string, number> = {};
    for (const result of results) {
      for (const [code, n] of Object.entries(result.errors)) count(errors, code, n);
    }
    const row: Row = {
      lock: lockName,
      store: storeKind,
      scope,
      events,
      perSecond: sold / (ROW_MS / 1000),
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      errors:
        Object.entries(errors)
          .map(([code, n]) => `${code} ${n}`)
          .join(", ") || "none",
    };
    console.log(JSON.stringify(row));
    return row;
  } finally {
    rmSync(dir, { recursive: true, force: true });
    if (storeKind === "postgres") await dropSchema(schema);
  }
}

interface HttpRow {
  lock: string;
  scope: LockScope;
  events: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  meanBatch: number;
  refused: number;
}

/** Sales per commit, from a server's own histogram. */
function meanBatchOf(metrics: string): { sum: number; count: number } {
  const sum = Number(/^boxoffice_sell_batch_size_sum(?:\{[^}]*\})? ([\d.e+]+)/m.exec(metrics)?.[1] ?? 0);
  const count = Number(/^boxoffice_sell_batch_size_count(?:\{[^}]*\})? (\d+)/m.exec(metrics)?.[1] ?? 0);
  return { sum, count };
}

/** One row of part 2: HTTP_SERVERS servers with `--lock lockArg`, HTTP_BUYERS buyers for ROW_MS. */
async function measureHttp(
  lockName: string,
  lockArg: string,
  scope: LockScope,
  events: number,
): Promise<HttpRow> {
  const dir = mkdtempSync(join(os.tmpdir(), "boxoffice-bench-locks-http-"));
  const servers: ServerProcess[] = [];
  try {
    // One after the other: two stores opening a fresh data directory at once can meet SQLITE_BUSY.
    for (let i = 0; i < HTTP_SERVERS; i++) {
      const args = ["--lock", lockArg, "--lock-scope", scope, "--lock-wait-ms", String(LOCK.waitMs)];
      servers.push(await ServerProcess.start({ dataDir: dir, instanceId: `bench-locks-${i}`, args }));
    }
  } catch (error) {
    // Stop the ones that did start, so that none outlives the bench.
    await Promise.all(servers.map((server) => server.stop()));
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  const pools = servers.map((server) => new Pool(server.url, { connections: HTTP_BUYERS, pipelining: 1 }));
  try {
    const eventIds: string[] = [];
    for (let i = 0; i < events; i++) {
      const body = { name: `Bench ${i}`, capacity: 1_000_000, maxPerCustomer: 1_000_000 };
      eventIds.push((await callInstance<{ id: string }>(pools[0]!, "POST", "/v1/events", body)).id);
    }
    const latencies: number[] = [];
    let refused = 0;
    let n = 0;
    const endMs = performance.now() + ROW_MS;
    const buyer = async (b: number): Promise<void> => {
      const pool = pools[b % pools.length]!;
      while (performance.now() < endMs) {
        const i = n++;
        const startedMs = performance.now();
        const response = await pool.request({
          method: "POST",
          path: `/v1/events/${eventIds[i % eventIds.length]}/orders`,
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ customerId: `b-${i}`, quantity: 1 }),
        });
        await response.body.dump();
        if (response.statusCode === 201) latencies.push(performance.now() - startedMs);
        else refused++;
      }
    };
    await Promise.all(Array.from({ length: HTTP_BUYERS }, (_, b) => buyer(b)));
    let sold = 0;
    for (const id of eventIds)
      sold += (await callInstance<{ sold: number }>(pools[0]!, "GET", `/v1/events/${id}`)).sold;
    if (sold !== latencies.length) throw new Error(`${latencies.length} answers 201, the store has ${sold}`);
    const batches = await Promise.all(
      pools.map((pool) => callInstance<string>(pool, "GET", "/metrics").then(meanBatchOf)),
    );
    latencies.sort((a, b) => a - b);
    const row: HttpRow = {
      lock: lockName,
      scope,
      events,
      perSecond: sold / (ROW_MS / 1000),
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      meanBatch:
        batches.reduce((sum, batch) => sum + batch.sum, 0) /
        batches.reduce((sum, batch) => sum + batch.count, 0),
      refused,
    };
    console.log(JSON.stringify(row));
    return row;
  } finally {
    await Promise.all(pools.map((pool) => pool.close()));
    await Promise.all(servers.map((server) => server.stop()));
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const redis = await startRedisServers(16380, 3);
  const started = new Date();
  const scopes = ["global", "event"] as const;
  try {
    const fileLock: LockConfig = { kind: "file", path: null };
    const sqliteLocks: [string, LockConfig][] = [
      ["none", { kind: "none" }],
      ["file", fileLock],
      ["redis", { kind: "redis", urls: [redis[0]!.url], keyPrefix: "bench:" }],
      ["redlock (3)", { kind: "redis", urls: redis.map((server) => server.url), keyPrefix: "bench:" }],
    ];
    const byProvider: Row[] = [];
    for (const [name, lock] of sqliteLocks) {
      for (const scope of scopes) {
        for (const events of [1, 50]) {
          byProvider.push(await measure(name, lock, "sqlite, file per event", scope, events));
        }
      }
    }
    const postgres: Row[] = [];
    const postgresMissing = await postgresSkip();
    if (postgresMissing === undefined) {
      const postgresLocks: [string, LockConfig][] = [
        ["none", { kind: "none" }],
        ["postgres (advisory)", { kind: "postgres", url: TEST_POSTGRES_URL }],
      ];
      for (const [name, lock] of postgresLocks) {
        for (const scope of scopes) {
          for (const events of [1, 50]) postgres.push(await measure(name, lock, "postgres", scope, events));
        }
      }
    }
    const overHttp: HttpRow[] = [];
    const httpLocks: [string, string][] = [
      ["none", "none"],
      ["file", "file"],
      ["redis", redis[0]!.url],
      ["redlock (3)", redis.map((server) => server.url).join(",")],
    ];
    for (const [name, lockArg] of httpLocks) {
      for (const scope of scopes) {
        for (const events of [1, 50]) overHttp.push(await measureHttp(name, lockArg, scope, events));
      }
    }
    const seed: Row[] = [];
    for (const store of ["sqlite, one file", "sqlite, file per event"] as const) {
      for (const scope of scopes) {
        for (const events of [1, 50]) {
          const known = byProvider.find(
            (row) =>
              row.lock === "file" && row.store === store && row.scope === scope && row.events === events,
          );
          seed.push(known ?? (await measure("file", fileLock, store, scope, events)));
        }
      }
    }
    writeReport(started, byProvider, postgres, postgresMissing, overHttp, seed);
  } finally {
    await stopAll();
    await Promise.all(redis.map((server) => server.kill()));
  }
}

function table(rows: Row[]): string {
  const lines = [
    "| lock | store | scope | events | purchases/s | p50 ms | p99 ms | errors |",
    "|---|---|---|---:|---:|---:|---:|---|",
  ];
  for (const row of rows) {
    const cells = [row.lock, row.store, row.scope, row.events, Math.round(row.perSecond)];
    cells.push(row.p50Ms.toFixed(1), row.p99Ms.toFixed(1), row.errors);
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

function httpTable(rows: HttpRow[]): string {
  const lines = [
    "| lock | scope | events | purchases/s | p50 ms | p99 ms | mean batch | non-201 |",
    "|---|---|---:|---:|---:|---:|---:|---:|",
  ];
  for (const row of rows) {
    const cells = [row.lock, row.scope, row.events, Math.round(row.perSecond), row.p50Ms.toFixed(1)];
    cells.push(row.p99Ms.toFixed(1), row.meanBatch.toFixed(1), row.refused);
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines.join("\n");
}

function writeReport(
  started: Date,
  byProvider: Row[],
  postgres: Row[],
  postgresMissing: string | undefined,
  overHttp: HttpRow[],
  seed: Row[],
): void {
  const cpus = os.cpus();
  const text = `# Benchmark: locks

Measured ${started.toISOString()} on ${cpus.length} × ${cpus[0]?.model ?? "unknown CPU"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB,
${os.type()} ${os.release()}, Node ${process.version}. ${machineNote()} Rows that should be alike (1 event under \`global\` and under \`event\` is the
same lock) show how large the noise is.

Part 1, the lock alone: the sell path's lock and write without HTTP — ${SELLERS} seller processes × ${BUYERS_PER_SELLER}
concurrent buyers, each repeatedly taking the lock (\`leaseMs\` ${LOCK.leaseMs}, \`waitMs\` ${LOCK.waitMs}), writing one
purchase of one ticket through the store, and releasing, for ${ROW_MS / 1000} s per row. One lock per purchase is the
worst case: the server's sell path batches the waiting purchases of an event under one lock (part 2). SQLite runs with
durability \`full\` (one fsync per commit). "1 event" is one hot on-sale; "50 events" spreads the buyers
uniformly. Latency is one purchase, lock wait included. Every row checks that the tickets the sellers were told
they sold are exactly those in the store. Lock servers are local (\`redis-server\` without persistence), so a
round trip is ~0.1 ms here; across hosts add your RTT per lock operation (Redlock: the slowest of its quorum).
Run it with \`npm run bench -- locks\`.

## The lock alone, every provider × scope (store: SQLite, a file per event)

${table(byProvider)}

## The lock alone on the PostgreSQL store (local server, a schema of its own)

${postgresMissing === undefined ? table(postgres) : `Not measured: ${postgresMissing}.`}

The \`postgres\` lock is \`pg_advisory_xact_lock\` inside the store's own write transaction.

## The real sell path over HTTP (store: SQLite, a file per event)

${HTTP_SERVERS} \`boxoffice server\` processes on one data directory, ${HTTP_BUYERS} closed-loop HTTP buyers from the bench process
(undici, keep-alive; the load generator shares the 2 cores), ${ROW_MS / 1000} s per row, one ticket per order. Each server
batches the waiting purchases of an event under one lock and one commit (mean batch = sales per lock and
commit). Latency is request to 201.

${httpTable(overHttp)}

## The two designs' trade-off, measured (lock: file)

Global lock (database level) versus a lock per event, one database file versus a file per event:

${table(seed)}
`;
  mkdirSync(join("docs", "benchmarks"), { recursive: true });
  writeFileSync(join("docs", "benchmarks", "locks.md"), text);
  console.log("wrote docs/benchmarks/locks.md");
}

if (process.argv[2] === "seller") {
  process.once("message", (request: SellerRequest) => {
    void seller(request).then((result) => process.send?.(result));
  });
  process.once("disconnect", () => process.exit(0));
} else {
  await main();
}
