/**
 * `node dist/bench/postgres-ab.js <worktreeA> <worktreeB> [rounds] [purchases]`: one purchase per
 * transaction on PostgreSQL, two builds of the store side by side. Each round runs, for A then B (B then
 * A on odd rounds, so both see the same load on a shared machine), a fresh process that opens the
 * build's compiled store (<worktree>/dist) on one connection and makes `purchases` sequential
 * single-purchase execute() calls on one event. Per build it prints the wall time, the client's CPU and
 * the server backend's CPU (from /proc) per transaction, and the protocol messages per transaction
 * (Parse, Sync, simple queries): CPU and messages hardly depend on what else the machine does, the wall
 * time does.
 *
 * With BOXOFFICE_AB_TICK=<n> (and BOXOFFICE_AB_EVENTS=<e>, default 1) it measures the sell path's tick
 * instead: each call is one executeMany() of n one-ticket purchases spread over e events, each event's
 * part with a fenced guard as a Redis lock gives it, and the figures are per purchase (messages per tick).
 *
 * Child mode (internal): `postgres-ab.js child <worktree> <purchases>` prints one JSON line.
 */
import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import pg from "pg";

const POSTGRES_URL = process.env.BOXOFFICE_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const WARMUP = 200;
/** Purchases per executeMany() tick, and the events they are spread over (0: one execute() each). */
const TICK = Number(process.env.BOXOFFICE_AB_TICK ?? 0);
const EVENTS = Number(process.env.BOXOFFICE_AB_EVENTS ?? 1);

interface ChildResult {
  wallUs: number;
  clientCpuUs: number;
  backendCpuUs: number;
  messages: Record<string, number>;
}

interface StoreLike {
  init(): Promise<void>;
  close(): Promise<void>;
  createEvent(plan: { id: string }): Promise<unknown>;
  execute(eventId: string, commands: unknown[], guard: null, now: Date): Promise<{ ok: boolean }[]>;
  executeMany(
    batches: { eventId: string; commands: unknown[]; guard: object | null }[],
    now: Date,
  ): Promise<({ ok: true; outcomes: { ok: boolean }[] } | { ok: false; error: unknown })[]>;
}

/** CPU time (µs) the server processes spent so far, from /proc/<pid>/stat (utime + stime, in ticks). */
function backendCpuUs(pids: Set<number>): number {
  let ticks = 0;
  for (const pid of pids) {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * 10_000;
}

async function child(root: string, purchases: number): Promise<ChildResult> {
  // The build's own pg (the same module when both worktrees share node_modules), hooked to count.
  const builtPg = (
    (await import(createRequire(resolve(root, "package.json")).resolve("pg"))) as { default: typeof pg }
  ).default;
  const connection = (builtPg as unknown as { Connection: { prototype: Record<string, unknown> } }).Connection
    .prototype;
  const messages: Record<string, number> = {};
  for (const name of ["parse", "sync", "query"]) {
    const original = connection[name] as (...args: unknown[]) => unknown;
    connection[name] = function (this: unknown, ...args: unknown[]) {
      messages[name] = (messages[name] ?? 0) + 1;
      return original.apply(this, args);
    };
  }
  const pids = new Set<number>();
  const query = builtPg.Client.prototype.query as (...args: unknown[]) => unknown;
  builtPg.Client.prototype.query = function (this: pg.Client & { processID?: number }, ...args: unknown[]) {
    if (this.processID) pids.add(this.processID);
    return query.apply(this, args);
  } as typeof builtPg.Client.prototype.query;

  const dist = resolve(root, "dist/src");
  const { PostgresStore } = (await import(`${dist}/store/postgres/postgres-store.js`)) as {
    PostgresStore: new (config: object) => StoreLike;
  };
  const { planEvent } = (await import(`${dist}/domain/event.js`)) as {
    planEvent(input: object, id: string, now: Date): { id: string };
  };
  const { newEventId } = (await import(`${dist}/domain/ids.js`)) as { newEventId(): string };
  const schema = `bench_ab_${process.pid}`;
  const store = new PostgresStore({ url: POSTGRES_URL, schema, poolSize: 1, statementTimeoutMs: 5000 });
  await store.init();
  try {
    const plans = Array.from({ length: Math.max(1, EVENTS) }, () =>
      planEvent({ name: "ab", capacity: 1_000_000, maxPerCustomer: 8 }, newEventId(), new Date()),
    );
    for (const plan of plans) await store.createEvent(plan);
    const plan = plans[0] as { id: string };
    let n = 0;
    const command = () => {
      n++;
      return {
        type: "purchase",
        customerId: `c${n}`,
        selection: { quantity: 1, seats: null },
        idempotency: { key: `k${n}`, fingerprint: "f" },
      };
    };
    const signal = new AbortController().signal;
    /** A sell-path tick: TICK purchases over the events, each event's part fenced as a Redis lock's. */
    const tick = async () => {
      const parts = plans.map((event) => ({
        eventId: event.id,
        commands: [] as unknown[],
        guard: { lockKey: `event:${event.id}`, fence: Date.now() * 1000, signal },
      }));
      for (let i = 0; i < TICK; i++) parts[i % parts.length]?.commands.push(command());
      const results = await store.executeMany(
        parts.filter((part) => part.commands.length > 0),
        new Date(),
      );
      for (const result of results) {
        if (!result.ok || result.outcomes.some((outcome) => !outcome.ok)) {
          throw new Error(`tick refused: ${JSON.stringify(result)}`);
        }
      }
    };
    const single = async () => {
      const [outcome] = await store.execute(plan.id, [command()], null, new Date());
      if (!outcome?.ok) throw new Error(`purchase ${n} refused: ${JSON.stringify(outcome)}`);
    };
    const purchase = TICK > 0 ? tick : single;
    for (let i = 0; i < (TICK > 0 ? WARMUP / 10 : WARMUP); i++) await purchase();
    for (const name of Object.keys(messages)) messages[name] = 0;
    const backendBefore = backendCpuUs(pids);
    const cpuBefore = process.cpuUsage();
    const started = performance.now();
    for (let i = 0; i < purchases; i++) await purchase();
    const wallMs = performance.now() - started;
    const cpu = process.cpuUsage(cpuBefore);
    const backendUs = backendCpuUs(pids) - backendBefore;
    // Per purchase; messages per call (a tick, or a single purchase).
    const sales = TICK > 0 ? purchases * TICK : purchases;
    return {
      wallUs: (wallMs * 1000) / sales,
      clientCpuUs: (cpu.user + cpu.system) / sales,
      backendCpuUs: backendUs / sales,
      messages: Object.fromEntries(
        Object.entries(messages).map(([name, count]) => [name, count / purchases]),
      ),
    };
  } finally {
    await store.close();
    const admin = new pg.Client({ connectionString: POSTGRES_URL });
    await admin.connect();
    await admin.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
    await admin.end();
  }
}

async function main(roots: string[], rounds: number, purchases: number): Promise<void> {
  const run = promisify(execFile);
  const self = fileURLToPath(import.meta.url);
  const results = new Map<string, ChildResult[]>(roots.map((root) => [root, []]));
  for (let round = 0; round < rounds; round++) {
    for (const root of round % 2 === 0 ? roots : [...roots].reverse()) {
      const { stdout } = await run(process.execPath, [self, "child", root, String(purchases)]);
      const result = JSON.parse(stdout) as ChildResult;
      results.get(root)?.push(result);
      console.log(
        `${root}: ${result.wallUs.toFixed(0)} µs/${TICK > 0 ? "sale" : "tx"} wall, client CPU ${result.clientCpuUs.toFixed(0)} µs, ` +
          `backend CPU ${result.backendCpuUs.toFixed(0)} µs, messages ${JSON.stringify(result.messages)}`,
      );
    }
  }
  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  for (const [root, list] of results) {
    console.log(
      `${root} mean of ${list.length}: ${mean(list.map((r) => r.wallUs)).toFixed(0)} µs/${TICK > 0 ? "sale" : "tx"} wall, ` +
        `client CPU ${mean(list.map((r) => r.clientCpuUs)).toFixed(0)} µs, ` +
        `backend CPU ${mean(list.map((r) => r.backendCpuUs)).toFixed(0)} µs`,
    );
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === "child") {
  process.stdout.write(JSON.stringify(await child(rest[0] ?? ".", Number(rest[1] ?? 2000))));
} else if (mode && rest[0]) {
  await main([mode, rest[0]], Number(rest[1] ?? 6), Number(rest[2] ?? 2000));
} else {
  console.error("usage: node dist/bench/postgres-ab.js <worktreeA> <worktreeB> [rounds] [purchases]");
  process.exitCode = 2;
}
