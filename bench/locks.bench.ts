/**
 * `npm run bench -- locks`: purchases per second and p99 latency of the sell path's lock + write
 * (no HTTP), for every lock provider × scope, on 1 hot event and spread over 50 events; then the seed's
 * trade-off table: global versus per-event lock, one database file versus a file per event.
 *
 * Each cell: 4 seller processes × 4 concurrent buyers, each buyer taking the lock, writing one purchase
 * through the SQLite store (durability "full": one fsync per commit) and releasing, for a fixed time.
 * Redis servers are our own (ports 16380–16382, as the lock contract test: do not run both at once),
 * never the shared one. Writes docs/benchmarks/locks.md.
 */
import { fork } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { planEvent } from "../src/domain/event.js";
import { newEventId } from "../src/domain/ids.js";
import type { Order } from "../src/domain/sale.js";
import { createLockProvider, type LockConfig } from "../src/lock/create-lock-provider.js";
import { lockKeyFor, type LockScope } from "../src/lock/lock-provider.js";
import { createStore, type StoreConfig } from "../src/store/create-store.js";
import { SqliteStore } from "../src/store/sqlite/sqlite-store.js";
import { startRedisServers } from "../test/support/redis-servers.js";

const SELLERS = 4;
const BUYERS_PER_SELLER = 4;
const CELL_MS = 2500;
const LOCK = { leaseMs: 5000, waitMs: 5000 };

interface CellRequest {
  lock: LockConfig;
  store: StoreConfig;
  scope: LockScope;
  eventIds: string[];
  durationMs: number;
}

interface CellResult {
  sold: number;
  errors: Record<string, number>;
  latenciesMs: number[];
}

/** A seller process: BUYERS_PER_SELLER loops of lock → one purchase → release, until the time is up. */
async function seller(request: CellRequest): Promise<CellResult> {
  const store = await createStore(request.store);
  await store.init();
  const lock = await createLockProvider(request.lock);
  await lock.init();
  const result: CellResult = { sold: 0, errors: {}, latenciesMs: [] };
  const endMs = performance.now() + request.durationMs;
  let n = 0;
  const buyer = async (): Promise<void> => {
    while (performance.now() < endMs) {
      const eventId = request.eventIds[Math.floor(Math.random() * request.eventIds.length)]!;
      const startedMs = performance.now();
      try {
        const [outcome] = await lock.withLock(lockKeyFor(request.scope, eventId), LOCK, (guard) =>
          store.execute(
            eventId,
            [
              {
                type: "purchase",
                customerId: `bench-${process.pid}-${n++}`,
                selection: { quantity: 1, seats: null },
                idempotency: null,
              },
            ],
            guard,
            new Date(),
          ),
        );
        if (outcome?.ok) result.sold += (outcome.value as Order).quantity;
        else
          result.errors[outcome?.refusal.code ?? "none"] =
            (result.errors[outcome?.refusal.code ?? "none"] ?? 0) + 1;
        result.latenciesMs.push(performance.now() - startedMs);
      } catch (error) {
        const code = String((error as { code?: unknown }).code ?? error);
        result.errors[code] = (result.errors[code] ?? 0) + 1;
      }
    }
  };
  await Promise.all(Array.from({ length: BUYERS_PER_SELLER }, buyer));
  await lock.close();
  await store.close();
  return result;
}

function runSeller(request: CellRequest): Promise<CellResult> {
  return new Promise((resolve, reject) => {
    const child = fork(fileURLToPath(import.meta.url), ["seller"], {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
    });
    child.once("message", (result: CellResult) => {
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
  provider: string;
  layout: "single" | "per-event";
  scope: LockScope;
  events: number;
  perSecond: number;
  p50Ms: number;
  p99Ms: number;
  errors: string;
}

async function cell(
  provider: string,
  lock: LockConfig,
  layout: Row["layout"],
  scope: LockScope,
  events: number,
): Promise<Row> {
  const dir = mkdtempSync(join(os.tmpdir(), "boxoffice-bench-locks-"));
  try {
    const storeConfig: StoreConfig = { kind: "sqlite", dir, layout, durability: "full", maxOpenEvents: 64 };
    const store = new SqliteStore(storeConfig);
    await store.init();
    const eventIds: string[] = [];
    for (let i = 0; i < events; i++) {
      const plan = planEvent({ name: `Bench ${i}`, capacity: 1_000_000 }, newEventId(), new Date());
      eventIds.push((await store.createEvent(plan)).id);
    }
    const lockConfig = lock.kind === "file" ? { ...lock, path: join(dir, "locks.sqlite") } : lock;
    const startedMs = performance.now();
    const results = await Promise.all(
      Array.from({ length: SELLERS }, () =>
        runSeller({ lock: lockConfig, store: storeConfig, scope, eventIds, durationMs: CELL_MS }),
      ),
    );
    const elapsedS = (performance.now() - startedMs) / 1000;
    let sold = 0;
    for (const id of eventIds) sold += (await store.getEvent(id))?.sold ?? 0;
    await store.close();
    const claimed = results.reduce((sum, result) => sum + result.sold, 0);
    if (claimed !== sold) throw new Error(`sellers claim ${claimed} tickets, the store has ${sold}`);
    const latencies = results.flatMap((result) => result.latenciesMs).sort((a, b) => a - b);
    const errors: Record<string, number> = {};
    for (const result of results) {
      for (const [code, count] of Object.entries(result.errors)) errors[code] = (errors[code] ?? 0) + count;
    }
    const row: Row = {
      provider,
      layout,
      scope,
      events,
      // Process start-up is in elapsedS; the sellers' own clock is what the rate is measured on.
      perSecond: sold / (CELL_MS / 1000),
      p50Ms: percentile(latencies, 50),
      p99Ms: percentile(latencies, 99),
      errors:
        Object.entries(errors)
          .map(([code, count]) => `${code} ${count}`)
          .join(", ") || "none",
    };
    console.log(JSON.stringify({ ...row, elapsedS: Number(elapsedS.toFixed(1)) }));
    return row;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const redis = await startRedisServers(16380, 3);
  const started = new Date();
  try {
    const providers: [string, LockConfig][] = [
      ["none", { kind: "none" }],
      ["file", { kind: "file", path: null }],
      ["redis", { kind: "redis", urls: [redis[0]!.url], keyPrefix: "bench:" }],
      ["redlock (3)", { kind: "redis", urls: redis.map((server) => server.url), keyPrefix: "bench:" }],
    ];
    const byProvider: Row[] = [];
    for (const [name, lock] of providers) {
      for (const scope of ["global", "event"] as const) {
        for (const events of [1, 50]) byProvider.push(await cell(name, lock, "per-event", scope, events));
      }
    }
    const seed: Row[] = [];
    for (const layout of ["single", "per-event"] as const) {
      for (const scope of ["global", "event"] as const) {
        for (const events of [1, 50]) {
          const known = byProvider.find(
            (row) =>
              row.provider === "file" &&
              row.layout === layout &&
              row.scope === scope &&
              row.events === events,
          );
          seed.push(known ?? (await cell("file", { kind: "file", path: null }, layout, scope, events)));
        }
      }
    }
    writeReport(started, byProvider, seed);
  } finally {
    await Promise.all(redis.map((server) => server.kill()));
  }
}

function table(rows: Row[]): string {
  const lines = [
    "| lock | store layout | scope | events | purchases/s | p50 ms | p99 ms | errors |",
    "|---|---|---|---:|---:|---:|---:|---|",
  ];
  for (const row of rows) {
    lines.push(
      `| ${row.provider} | ${row.layout} | ${row.scope} | ${row.events} | ${Math.round(row.perSecond)} | ${row.p50Ms.toFixed(1)} | ${row.p99Ms.toFixed(1)} | ${row.errors} |`,
    );
  }
  return lines.join("\n");
}

function writeReport(started: Date, byProvider: Row[], seed: Row[]): void {
  const cpus = os.cpus();
  const text = `# Benchmark: locks

Measured ${started.toISOString()} on ${cpus.length} × ${cpus[0]?.model ?? "unknown CPU"}, ${Math.round(os.totalmem() / 2 ** 30)} GiB,
${os.type()} ${os.release()}, Node ${process.version}. **The machine was shared with other engineers' builds and
tests while this ran: the numbers are noisy; the lead reruns them at the end.**

What is measured: the sell path's lock and write without HTTP — ${SELLERS} seller processes × ${BUYERS_PER_SELLER}
concurrent buyers, each repeatedly taking the lock (\`leaseMs\` ${LOCK.leaseMs}, \`waitMs\` ${LOCK.waitMs}), writing one
purchase of one ticket through the SQLite store (durability \`full\`: one fsync per commit), and releasing,
for ${CELL_MS / 1000} s per row. "1 event" is one hot on-sale; "50 events" spreads the buyers uniformly. Latency is one
purchase, lock wait included. Every row checks that the tickets the sellers were told they sold are exactly
those in the store. Redis servers are local (\`redis-server\`, no persistence), so a network round trip is
~0.1 ms here; across hosts, add your RTT per lock operation (Redlock: per operation to the slowest of the
quorum). Run it with \`npm run bench -- locks\`.

## Every provider × scope (store: a file per event)

${table(byProvider)}

## The seed's trade-off, measured (lock: file)

Global lock (database level) versus a lock per event, one database file versus a file per event:

${table(seed)}
`;
  mkdirSync("docs/benchmarks", { recursive: true });
  writeFileSync(join("docs", "benchmarks", "locks.md"), text);
  console.log("wrote docs/benchmarks/locks.md");
}

if (process.argv[2] === "seller") {
  process.once("message", (request: CellRequest) => {
    void seller(request).then((result) => process.send?.(result));
  });
  process.once("disconnect", () => process.exit(0));
} else {
  await main();
}
