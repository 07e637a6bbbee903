/**
 * The SQLite store's sell path alone, in process: batches of new-customer purchases of 1 ticket on one
 * event (the store benchmark's hot row without HTTP), durability "normal" so that fsync does not drown
 * the CPU cost. Not a scenario of `npm run bench`: a tool to compare two builds of the store, run as
 *
 *   node dist/bench/sell-batch.js [<root of a built checkout>] [batches] [batch size] [keyed|unkeyed] [events]
 *
 * (the root defaults to this checkout; e.g. /work/wt/at-b4f4490 to measure another build; `keyed` gives
 * every purchase an Idempotency-Key, as the HTTP benchmarks' orders have; `events` > 1 spreads each batch
 * evenly over that many events, committed together by executeMany as the sell path does).
 * `BOXOFFICE_BENCH_LAYOUT=per-event` uses a file per event (its commit threads) instead of one file, and
 * `BOXOFFICE_BENCH_DURABILITY=full` fsyncs each commit, as the server does by default;
 * `BOXOFFICE_BENCH_GUARD=global|event` gives every part a fenced write guard as the sell path's lock does
 * (one key for all events, or one per event; a new fence each batch), none by default;
 * `BOXOFFICE_BENCH_MAX_OPEN_EVENTS` the event files kept open (256, as the server);
 * `BOXOFFICE_BENCH_COMMIT_THREADS` sets the per-event layout's commit threads (4, as the server). Prints the wall time per sale
 * and the process's CPU time per sale (process.cpuUsage), which a busy shared machine moves far less.
 */
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { EventPlan } from "../src/domain/event.js";
import type { Command } from "../src/domain/sale.js";
import type { WriteGuard } from "../src/domain/write-guard.js";
import type { Store } from "../src/store/store.js";

/** What the benchmark calls of a store: this checkout's types, whichever checkout's build runs. */
type StoreLike = Required<Pick<Store, "init" | "close" | "createEvent" | "execute" | "executeMany">>;

const here = fileURLToPath(new URL("../..", import.meta.url));
const root = resolve(process.argv[2] ?? here);
const batches = Number(process.argv[3] ?? 3000);
const batchSize = Number(process.argv[4] ?? 33);
const keyed = process.argv[5] === "keyed";
const eventCount = Number(process.argv[6] ?? 1);
const guardScope = process.env.BOXOFFICE_BENCH_GUARD;
const neverAborted = new AbortController().signal;
/** The guard a lock grant of this batch's tick would give the event's part (null: no guard). */
const guardOf = (eventId: string, fence: number): WriteGuard | null =>
  guardScope === "global" || guardScope === "event"
    ? { lockKey: guardScope === "global" ? "global" : `event:${eventId}`, fence, signal: neverAborted }
    : null;

const load = async <T>(path: string): Promise<T> =>
  (await import(pathToFileURL(join(root, "dist", path)).href)) as T;
const { SqliteStore } = await load<{ SqliteStore: new (config: object) => StoreLike }>(
  "src/store/sqlite/sqlite-store.js",
);
const { planEvent } = await load<{ planEvent: (request: object, id: string, now: Date) => EventPlan }>(
  "src/domain/event.js",
);
const { newEventId } = await load<{ newEventId: () => string }>("src/domain/ids.js");

const dir = mkdtempSync(join(os.tmpdir(), "boxoffice-sell-batch-"));
const store = new SqliteStore({
  kind: "sqlite",
  dir,
  layout: process.env.BOXOFFICE_BENCH_LAYOUT === "per-event" ? "per-event" : "single",
  durability: process.env.BOXOFFICE_BENCH_DURABILITY === "full" ? "full" : "normal",
  commitThreads: Number(process.env.BOXOFFICE_BENCH_COMMIT_THREADS ?? 4),
  maxOpenEvents: Number(process.env.BOXOFFICE_BENCH_MAX_OPEN_EVENTS ?? 256),
});
try {
  await store.init();
  const eventIds: string[] = [];
  for (let e = 0; e < eventCount; e++) {
    const plan = planEvent(
      { name: `Bench ${e}`, capacity: 1_000_000, maxPerCustomer: 1_000_000 },
      newEventId(),
      new Date(),
    );
    await store.createEvent(plan);
    eventIds.push(plan.id);
  }
  let customer = 0;
  let fence = 0;
  const run = async (count: number): Promise<number> => {
    let sold = 0;
    for (let b = 0; b < count; b++) {
      fence++;
      const commands: Command[] = [];
      for (let i = 0; i < batchSize; i++) {
        commands.push({
          type: "purchase",
          customerId: `b-${customer++}`,
          selection: { quantity: 1, seats: null },
          idempotency: keyed ? { key: `c1.k-${customer}`, fingerprint: `f-${customer}` } : null,
        });
      }
      if (eventIds.length === 1) {
        const guard = guardOf(eventIds[0]!, fence);
        for (const outcome of await store.execute(eventIds[0]!, commands, guard, new Date()))
          if (outcome.ok) sold++;
        continue;
      }
      // The batch's commands spread over the events, as the sell path's tick hands them over.
      const parts = new Map<string, Command[]>();
      commands.forEach((command, i) => {
        const eventId = eventIds[(b * batchSize + i) % eventIds.length]!;
        parts.set(eventId, [...(parts.get(eventId) ?? []), command]);
      });
      const batch = [...parts].map(([eventId, part]) => ({
        eventId,
        commands: part,
        guard: guardOf(eventId, fence),
      }));
      for (const result of await store.executeMany(batch, new Date()))
        if (result.ok) sold += result.outcomes.filter((outcome) => outcome.ok).length;
    }
    return sold;
  };
  await run(Math.ceil(batches / 5)); // warm-up: JIT, page cache, a table that is not empty
  const started = performance.now();
  const cpuBefore = process.cpuUsage();
  const sold = await run(batches);
  const cpu = process.cpuUsage(cpuBefore);
  const seconds = (performance.now() - started) / 1000;
  console.log(
    JSON.stringify({
      root,
      batches,
      batchSize,
      keyed,
      events: eventCount,
      sold,
      salesPerSecond: Math.round(sold / seconds),
      usPerSale: Number(((seconds * 1e6) / sold).toFixed(2)),
      cpuUsPerSale: Number(((cpu.user + cpu.system) / sold).toFixed(2)),
    }),
  );
} finally {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
}
