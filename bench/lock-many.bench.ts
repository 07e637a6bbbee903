/**
 * `npm run bench -- lock-many`: what a multi-event tick pays for its locks, the old way and the new.
 * For 1, 10 and 50 free keys: (a) `withLock` per key, nested in sorted key order (the tick before
 * withLocks), against (b) one `withLocks` over all keys; each an acquire, an empty work and a release,
 * on the file lock and on a single Redis (the shared test Redis, under a key prefix of its own, removed
 * afterwards). The two ways take turns, iteration by iteration, so machine load hits both alike; the
 * table gives the median wall time and the mean CPU time of this process per tick.
 * Writes docs/benchmarks/lock-many.md.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { createLockProvider, type LockConfig } from "../src/lock/create-lock-provider.js";
import type { LockProvider } from "../src/lock/lock-provider.js";
import { deleteKeysWithPrefix, testKeyPrefix } from "../test/support/redis-keys.js";
import { redisSkip, TEST_REDIS_URL } from "../test/support/services.js";
import { machineNote } from "./machine-note.js";

const ITERATIONS = Number(process.env.BOXOFFICE_BENCH_ITERATIONS ?? 200);
const KEY_COUNTS = [1, 10, 50];
const LEASE_MS = 5000;

/** The tick before withLocks: each key's withLock nested inside the previous one, in sorted order. */
async function nested(lock: LockProvider, keys: readonly string[], i = 0): Promise<void> {
  const key = keys[i];
  if (key === undefined) return;
  await lock.withLock(key, { leaseMs: LEASE_MS, waitMs: 1000 }, () => nested(lock, keys, i + 1));
}

async function many(lock: LockProvider, keys: readonly string[]): Promise<void> {
  await lock.withLocks(keys, { leaseMs: LEASE_MS }, async (granted) => {
    if (granted.size !== keys.length) throw new Error("a free key was refused");
  });
}

interface Sample {
  wallMs: number[];
  cpuUs: number;
}

async function measure(run: () => Promise<void>, sample: Sample): Promise<void> {
  const cpu = process.cpuUsage();
  const startedMs = performance.now();
  await run();
  sample.wallMs.push(performance.now() - startedMs);
  const used = process.cpuUsage(cpu);
  sample.cpuUs += used.user + used.system;
}

const median = (values: number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? NaN;
};

const rows: string[] = [];
const dir = mkdtempSync(join(os.tmpdir(), "boxoffice-bench-lock-many-"));
const redisPrefix = testKeyPrefix("bench-lock-many");
const providers: { name: string; config: LockConfig }[] = [
  { name: "file", config: { kind: "file", path: join(dir, "locks.sqlite") } },
];
if ((await redisSkip()) === undefined) {
  providers.push({
    name: "redis",
    config: { kind: "redis", urls: [TEST_REDIS_URL], keyPrefix: redisPrefix },
  });
}
try {
  for (const { name, config } of providers) {
    const lock = await createLockProvider(config);
    await lock.init();
    try {
      for (const count of KEY_COUNTS) {
        const keys = Array.from({ length: count }, (_, i) => `event:bench-${String(i).padStart(3, "0")}`);
        const old: Sample = { wallMs: [], cpuUs: 0 };
        const now: Sample = { wallMs: [], cpuUs: 0 };
        for (let i = 0; i < 10; i++) {
          await nested(lock, keys);
          await many(lock, keys);
        }
        for (let i = 0; i < ITERATIONS; i++) {
          await measure(() => nested(lock, keys), old);
          await measure(() => many(lock, keys), now);
        }
        const line =
          `| ${name} | ${count} | ${median(old.wallMs).toFixed(2)} | ${median(now.wallMs).toFixed(2)} | ` +
          `${(old.cpuUs / ITERATIONS).toFixed(0)} | ${(now.cpuUs / ITERATIONS).toFixed(0)} |`;
        console.log(line);
        rows.push(line);
      }
    } finally {
      await lock.close();
    }
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
  await deleteKeysWithPrefix(TEST_REDIS_URL, redisPrefix).catch(() => undefined);
}

const table = [
  "| lock | keys per tick | nested withLock: ms per tick (median) | withLocks: ms | nested: CPU µs per tick (mean) | withLocks: CPU µs |",
  "|---|---:|---:|---:|---:|---:|",
  ...rows,
].join("\n");
mkdirSync("docs/benchmarks", { recursive: true });
writeFileSync(
  "docs/benchmarks/lock-many.md",
  `# A tick's locks: nested withLock against one withLocks\n\n` +
    `Produced by \`npm run bench -- lock-many\` (bench/lock-many.bench.ts), ${ITERATIONS} ticks per row, ` +
    `the two ways taking turns; free keys, an empty work, durable nothing (the lock alone).\n\n` +
    `${table}\n\n${machineNote()}\n`,
);
