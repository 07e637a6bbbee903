/**
 * `node dist/bench/lock-handoff.js [--seconds 3] [--only file,redis] [--cap 10]`: how fast one hot key's lock passes between two
 * processes, with and without release notifications, for the file lock and Redis. Each of two child
 * processes loops as the sell path does for a hot event: one withLocks try; granted, it holds the lock
 * for a 1 ms "commit" (CPU spin), releases and tries again at once; refused, it waits for the key's
 * release (onReleased) or its jittered backoff (1 ms doubling to `--cap`), whichever comes first. Prints
 * grants per second (both processes), tries per grant, the mean gap between one holder's release and
 * the next grant, and the children's CPU per grant. No HTTP, no store: the hand-over alone.
 */
import { fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { FileLock } from "../src/lock/file/file-lock.js";
import type { LockProvider } from "../src/lock/lock-provider.js";
import { RedisLock } from "../src/lock/redis/redis-lock.js";
import { deleteKeysWithPrefix, testKeyPrefix } from "../test/support/redis-keys.js";

const REDIS_URL = process.env.BOXOFFICE_BENCH_REDIS_URL ?? "redis://127.0.0.1:6379";
const HOLD_MS = 1;

interface ChildArgs {
  kind: "file" | "redis";
  target: string;
  notify: boolean;
  seconds: number;
  /** The backoff's cap, ms. */
  cap: number;
}
interface ChildResult {
  grants: number;
  tries: number;
  cpuUs: number;
  /** Sum of (grant time − the other process's last release time), host monotonic ms, when known. */
  releases: number[];
  grantsAt: number[];
}

function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** The host's monotonic clock (shared by both children) in ms. */
const hostMs = (): number => Number(process.hrtime.bigint()) / 1e6;

async function child(args: ChildArgs): Promise<ChildResult> {
  const lock: LockProvider =
    args.kind === "file"
      ? new FileLock({ path: args.target, releaseNotifications: args.notify })
      : new RedisLock({ urls: [REDIS_URL], keyPrefix: args.target, releaseNotifications: args.notify });
  await lock.init();
  let released = false;
  let wake: (() => void) | null = null;
  lock.onReleased?.("hot", () => {
    released = true;
    wake?.();
  });
  const result: ChildResult = { grants: 0, tries: 0, cpuUs: 0, releases: [], grantsAt: [] };
  const cpu0 = process.cpuUsage();
  const endMs = performance.now() + args.seconds * 1000;
  let busyTries = 0;
  while (performance.now() < endMs) {
    released = false;
    result.tries++;
    const got = await lock.withLocks(["hot"], { leaseMs: 5000 }, async (granted) => {
      if (granted.size === 0) return false;
      result.grantsAt.push(hostMs());
      spin(HOLD_MS);
      return true;
    });
    if (got) {
      result.releases.push(hostMs());
      result.grants++;
      busyTries = 0;
      // As the sell path's next tick: after the event loop's current phase.
      await new Promise((resolve) => setImmediate(resolve));
      continue;
    }
    if (released) continue;
    const backoffMs = 1 + Math.random() * Math.min(args.cap, 2 ** busyTries++);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, backoffMs);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    wake = null;
  }
  const cpu = process.cpuUsage(cpu0);
  result.cpuUs = cpu.user + cpu.system;
  await lock.close();
  return result;
}

async function run(kind: "file" | "redis", notify: boolean, seconds: number, cap: number): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), "boxoffice-handoff-"));
  const prefix = testKeyPrefix("bench-handoff");
  const target = kind === "file" ? join(dir, "locks.sqlite") : prefix;
  // Both open the lock first, so that neither starts while the other is still connecting.
  const results = await Promise.all(
    [0, 1].map(
      () =>
        new Promise<ChildResult>((resolve, reject) => {
          const proc = fork(fileURLToPath(import.meta.url), [
            "--child",
            JSON.stringify({ kind, target, notify, seconds, cap }),
          ]);
          proc.once("message", (message) => resolve(message as ChildResult));
          proc.once("error", reject);
        }),
    ),
  );
  rmSync(dir, { recursive: true, force: true });
  if (kind === "redis") await deleteKeysWithPrefix(REDIS_URL, prefix);
  const grants = results.reduce((sum, r) => sum + r.grants, 0);
  const tries = results.reduce((sum, r) => sum + r.tries, 0);
  const cpuUs = results.reduce((sum, r) => sum + r.cpuUs, 0);
  // The gap of a hand-over: a grant in one process after the latest release in the other.
  const [a, b] = results as [ChildResult, ChildResult];
  const gaps: number[] = [];
  for (const [mine, theirs] of [
    [a, b],
    [b, a],
  ] as const) {
    let j = 0;
    for (const at of mine.grantsAt) {
      while (j + 1 < theirs.releases.length && theirs.releases[j + 1]! <= at) j++;
      const last = theirs.releases[j];
      // Only a grant that followed the other's release, with no own release in between, is a hand-over.
      if (
        last !== undefined &&
        last <= at &&
        at - last < 50 &&
        !mine.releases.some((r) => r > last && r < at)
      )
        gaps.push(at - last);
    }
  }
  gaps.sort((x, y) => x - y);
  const mean = gaps.reduce((sum, g) => sum + g, 0) / Math.max(1, gaps.length);
  return (
    `${kind.padEnd(5)} notifications ${notify ? "on " : "off"}, cap ${cap} ms: ${(grants / seconds).toFixed(0)} grants/s, ` +
    `${(tries / Math.max(1, grants)).toFixed(2)} tries/grant, ${gaps.length} hand-overs, gap mean ` +
    `${mean.toFixed(2)} ms p50 ${(gaps[Math.floor(gaps.length / 2)] ?? NaN).toFixed(2)} ms; ` +
    `CPU beyond the ${HOLD_MS} ms hold ${(cpuUs / Math.max(1, grants) - HOLD_MS * 1000).toFixed(0)} µs/grant`
  );
}

if (process.argv[2] === "--child") {
  const result = await child(JSON.parse(process.argv[3]!) as ChildArgs);
  process.send!(result, () => process.exit(0));
} else {
  const { values } = parseArgs({
    options: {
      seconds: { type: "string", default: "3" },
      only: { type: "string", default: "file,redis" },
      cap: { type: "string", default: "10" },
    },
  });
  const seconds = Number(values.seconds);
  const cap = Number(values.cap);
  for (const kind of values.only.split(",") as ("file" | "redis")[]) {
    for (const notify of [false, true, false, true]) console.log(await run(kind, notify, seconds, cap));
  }
}
