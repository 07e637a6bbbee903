/**
 * `npm run bench -- postgres-many`: what one commit for many events' batches (Store.executeMany) does
 * for PostgreSQL, at the store, without HTTP or locks. Two "instances" (loops in one process, each with
 * its own store and pool, as two servers would have) each run sell-path ticks back to back: a tick takes
 * TICK one-ticket purchases (unique customers and idempotency keys) and commits them
 *
 * - on one hot event: one execute() of the whole tick;
 * - spread over 50 events, one execute() per event, all at once (what the sell path did before
 *   executeMany: each event's batch its own transaction);
 * - spread over 50 events, one executeMany() of the whole tick (one transaction, three round trips).
 *
 * Rows: sales per second and the p99 of a tick's commit, each variant measured in turn for ROUNDS
 * rounds (median kept). Results: docs/benchmarks/postgres-many.md.
 */
import { writeFileSync } from "node:fs";
import { planEvent } from "../src/domain/event.js";
import { newEventId } from "../src/domain/ids.js";
import type { Command } from "../src/domain/sale.js";
import { PostgresStore } from "../src/store/postgres/postgres-store.js";
import { dropSchema, freshSchemaName } from "../test/support/postgres-test-store.js";
import { machineNote } from "./machine-note.js";

const POSTGRES_URL = process.env.BOXOFFICE_BENCH_POSTGRES_URL ?? "postgres://postgres@127.0.0.1:5432/test";
const SECONDS = Number(process.env.BOXOFFICE_BENCH_SECONDS ?? 3);
const ROUNDS = Number(process.env.BOXOFFICE_BENCH_ROUNDS ?? 3);
/** Purchases per tick: about what queues during one commit at a few thousand sales/s. */
const TICK = Number(process.env.BOXOFFICE_BENCH_TICK ?? 64);
const INSTANCES = Number(process.env.BOXOFFICE_BENCH_INSTANCES ?? 2);
const EVENTS = 50;

type Variant = "hot event, execute()" | "50 events, execute() per event" | "50 events, executeMany()";
const VARIANTS: Variant[] = [
  "hot event, execute()",
  "50 events, execute() per event",
  "50 events, executeMany()",
];

interface Result {
  sales: number;
  ticksMs: number[];
}

let counter = 0;
function purchases(n: number): Command[] {
  return Array.from({ length: n }, () => {
    const id = `${process.pid}-${++counter}`;
    return {
      type: "purchase",
      customerId: `c${id}`,
      selection: { quantity: 1, seats: null },
      idempotency: { key: `k${id}`, fingerprint: "f" },
    };
  });
}

async function tick(store: PostgresStore, variant: Variant, hot: string, events: string[]): Promise<number> {
  const now = new Date();
  const commands = purchases(TICK);
  if (variant === "hot event, execute()") {
    const outcomes = await store.execute(hot, commands, null, now);
    return outcomes.filter((outcome) => outcome.ok).length;
  }
  // The tick's purchases spread over the events (each buyer picked an event at random).
  const byEvent = new Map<string, Command[]>();
  for (const command of commands) {
    const eventId = events[Math.floor(Math.random() * events.length)] as string;
    byEvent.set(eventId, [...(byEvent.get(eventId) ?? []), command]);
  }
  const batches = [...byEvent].map(([eventId, part]) => ({ eventId, commands: part, guard: null }));
  if (variant === "50 events, executeMany()") {
    const results = await store.executeMany(batches, now);
    return results.reduce((sum, r) => sum + (r.ok ? r.outcomes.filter((o) => o.ok).length : 0), 0);
  }
  const all = await Promise.all(batches.map((b) => store.execute(b.eventId, b.commands, null, now)));
  return all.reduce((sum, outcomes) => sum + outcomes.filter((o) => o.ok).length, 0);
}

async function measure(
  stores: PostgresStore[],
  variant: Variant,
  hot: string,
  events: string[],
): Promise<Result> {
  const endAt = Date.now() + SECONDS * 1000;
  const result: Result = { sales: 0, ticksMs: [] };
  await Promise.all(
    stores.map(async (store) => {
      while (Date.now() < endAt) {
        const started = performance.now();
        result.sales += await tick(store, variant, hot, events);
        result.ticksMs.push(performance.now() - started);
      }
    }),
  );
  return result;
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? NaN;
const p99 = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length * 0.99)] ?? NaN;

async function main(): Promise<void> {
  const schema = freshSchemaName("bench_many");
  const open = async () => {
    const store = new PostgresStore({ url: POSTGRES_URL, schema, poolSize: 10, statementTimeoutMs: 10_000 });
    await store.init();
    return store;
  };
  const stores: PostgresStore[] = [];
  try {
    for (let i = 0; i < INSTANCES; i++) stores.push(await open());
    const create = async () => {
      const plan = planEvent(
        { name: "Bench", capacity: 1_000_000, maxPerCustomer: 8 },
        newEventId(Date.now()),
        new Date(),
      );
      await stores[0]!.createEvent(plan);
      return plan.id;
    };
    const hot = await create();
    const events: string[] = [];
    for (let i = 0; i < EVENTS; i++) events.push(await create());
    // Warm-up: pools fill, the JIT settles.
    for (const variant of VARIANTS) await measure(stores, variant, hot, events);
    const rates = new Map<Variant, number[]>(VARIANTS.map((v) => [v, []]));
    const tails = new Map<Variant, number[]>(VARIANTS.map((v) => [v, []]));
    for (let round = 0; round < ROUNDS; round++) {
      for (const variant of round % 2 === 0 ? VARIANTS : [...VARIANTS].reverse()) {
        const result = await measure(stores, variant, hot, events);
        rates.get(variant)!.push(result.sales / SECONDS);
        tails.get(variant)!.push(p99(result.ticksMs));
        console.log(
          `${variant.padEnd(32)} ${(result.sales / SECONDS).toFixed(0).padStart(7)} sales/s  ` +
            `tick p99 ${p99(result.ticksMs).toFixed(1)} ms`,
        );
      }
    }
    const hotRate = median(rates.get("hot event, execute()")!);
    const rows = VARIANTS.map((variant) => {
      const rate = median(rates.get(variant)!);
      return `| ${variant} | ${rate.toFixed(0)} | ${(rate / hotRate).toFixed(2)}× | ${median(tails.get(variant)!).toFixed(1)} | ${rates
        .get(variant)!
        .map((r) => r.toFixed(0))
        .join(", ")} |`;
    });
    const markdown = `# PostgreSQL: one commit for many events' batches

Generated by \`npm run bench -- postgres-many\` (bench/postgres-many.bench.ts) on ${new Date().toISOString().slice(0, 10)}.
${INSTANCES} store handles (as ${INSTANCES} instances would have, pool of 10 each) run sell-path ticks back to
back, ${TICK} one-ticket purchases a tick (unique customers and idempotency keys), for ${SECONDS} s per variant
and round, ${ROUNDS} rounds in alternating order (median kept). No HTTP and no lock: the store alone.

| variant | sales/s | × hot event | p99 of a tick's commit (ms) | each round |
|---|---:|---:|---:|---|
${rows.join("\n")}

"50 events, execute() per event" is what the sell path did before Store.executeMany: each event's batch
in its own transaction, all at once on the pool. "executeMany()" commits the whole tick in one
transaction of three round trips (docs/postgres.md, "Set-based batches").

${machineNote()}
`;
    writeFileSync("docs/benchmarks/postgres-many.md", markdown);
    console.log(markdown);
  } finally {
    await Promise.all(stores.map((store) => store.close()));
    await dropSchema(POSTGRES_URL, schema);
  }
}

await main();
