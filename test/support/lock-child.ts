/**
 * A child process that takes locks on command, for the lock tests: forked with IPC, it builds its own
 * provider from the config it is given, and answers each request with messages tagged by request id.
 *
 * Requests:
 * - hold: take the lock, say "acquired" (with the fence), then wait for "release" or for the lease to be
 *   lost (say "aborted"); finally say "done".
 * - count: `iterations` times, take the lock and increment a counter file with a read–sleep–write, using
 *   an O_EXCL marker file to catch two holders at once; say "done" with the violations seen.
 * - try: take the lock once and say "done" (ok, or the error code).
 * - countMany: `iterations` rounds; in each, take `keys` with withLocks, again and again for the keys
 *   refused (never waiting for them while holding the others), until every key's counter file
 *   (`counter-<i>`) was incremented once with a read–sleep–write under its lock, an O_EXCL marker per
 *   key catching two holders at once; say "done" with the violations and refusals seen.
 */
import { appendFileSync, closeSync, openSync, readFileSync, unlinkSync, writeFileSync } from "node:fs";
import { setTimeout as sleep } from "node:timers/promises";
import { join } from "node:path";
import {
  createLockProvider,
  type LockConfig,
  type LockContext,
} from "../../src/lock/create-lock-provider.js";
import type { LockProvider } from "../../src/lock/lock-provider.js";
import { guardedSection, guardedSections } from "./guarded-section.js";

export type ChildRequest =
  | { op: "hold"; id: number; key: string; leaseMs: number; waitMs: number }
  | { op: "release"; id: number; holdId: number }
  | { op: "count"; id: number; key: string; leaseMs: number; waitMs: number; iterations: number; dir: string }
  | { op: "try"; id: number; key: string; leaseMs: number; waitMs: number }
  | {
      op: "countMany";
      id: number;
      keys: string[];
      leaseMs: number;
      transactionWaitMs: number;
      iterations: number;
      dir: string;
    };

export type ChildMessage =
  | { id: number; event: "acquired"; fence: number | null }
  | { id: number; event: "aborted"; code: string }
  | { id: number; event: "done"; ok: boolean; code?: string; violations?: number; busy?: number };

export interface ChildSetup {
  config: LockConfig;
  context: LockContext;
  /** For providers that lock inside a PostgreSQL transaction. */
  postgresUrl: string | null;
}

function codeOf(error: unknown): string {
  return String((error as { code?: unknown } | null)?.code ?? (error as Error)?.message ?? error);
}

const send = (message: ChildMessage): void => {
  process.send?.(message);
};

const releases = new Map<number, () => void>();
let provider: LockProvider | null = null;
let setup: ChildSetup | null = null;

async function hold(request: Extract<ChildRequest, { op: "hold" }>): Promise<void> {
  const released = new Promise<void>((resolve) => releases.set(request.id, resolve));
  try {
    await provider!.withLock(request.key, request, (guard) =>
      guardedSection(guard, setup!.postgresUrl, async () => {
        send({ id: request.id, event: "acquired", fence: guard.fence });
        const aborted = new Promise<void>((resolve) =>
          guard.signal.addEventListener("abort", () => resolve()),
        );
        await Promise.race([released, aborted]);
        if (guard.signal.aborted) {
          send({ id: request.id, event: "aborted", code: codeOf(guard.signal.reason) });
          throw guard.signal.reason;
        }
      }),
    );
    send({ id: request.id, event: "done", ok: true });
  } catch (error) {
    send({ id: request.id, event: "done", ok: false, code: codeOf(error) });
  }
}

async function count(request: Extract<ChildRequest, { op: "count" }>): Promise<void> {
  const counterPath = join(request.dir, "counter");
  const markerPath = join(request.dir, "holder");
  let violations = 0;
  let busy = 0;
  for (let done = 0; done < request.iterations;) {
    try {
      await provider!.withLock(request.key, request, (guard) =>
        guardedSection(guard, setup!.postgresUrl, async () => {
          let marker: number | null = null;
          try {
            marker = openSync(markerPath, "wx");
          } catch {
            violations++;
          }
          const value = Number(readFileSync(counterPath, "utf8"));
          await sleep(1 + Math.random() * 3);
          writeFileSync(counterPath, String(value + 1));
          appendFileSync(join(request.dir, "fences"), `${guard.fence}\n`);
          if (marker !== null) {
            closeSync(marker);
            unlinkSync(markerPath);
          }
        }),
      );
      done++;
    } catch (error) {
      if (codeOf(error) !== "LOCK_BUSY") throw error;
      busy++;
    }
  }
  send({ id: request.id, event: "done", ok: true, violations, busy });
}

async function tryOnce(request: Extract<ChildRequest, { op: "try" }>): Promise<void> {
  try {
    await provider!.withLock(request.key, request, (guard) =>
      guardedSection(guard, setup!.postgresUrl, async () => {}),
    );
    send({ id: request.id, event: "done", ok: true });
  } catch (error) {
    send({ id: request.id, event: "done", ok: false, code: codeOf(error) });
  }
}

async function countMany(request: Extract<ChildRequest, { op: "countMany" }>): Promise<void> {
  let violations = 0;
  let busy = 0;
  for (let round = 0; round < request.iterations; round++) {
    let remaining = [...request.keys];
    while (remaining.length > 0) {
      try {
        const { committed } = await provider!.withLocks(remaining, request, async (granted, refused) => {
          busy += refused.size;
          for (const error of refused.values()) if (codeOf(error) !== "LOCK_BUSY") throw error;
          return guardedSections(granted, setup!.postgresUrl, async () => {
            await Promise.all(
              [...granted].map(async ([key, guard]) => {
                const i = request.keys.indexOf(key);
                const markerPath = join(request.dir, `holder-${i}`);
                const counterPath = join(request.dir, `counter-${i}`);
                let marker: number | null = null;
                try {
                  marker = openSync(markerPath, "wx");
                } catch {
                  violations++;
                }
                const value = Number(readFileSync(counterPath, "utf8"));
                await sleep(1 + Math.random() * 3);
                writeFileSync(counterPath, String(value + 1));
                appendFileSync(join(request.dir, `fences-${i}`), `${guard.fence}\n`);
                if (marker !== null) {
                  closeSync(marker);
                  unlinkSync(markerPath);
                }
              }),
            );
          });
        });
        remaining = remaining.filter((key) => !committed.includes(key));
      } catch (error) {
        if (codeOf(error) !== "LOCK_BUSY") throw error;
        busy++;
      }
      if (remaining.length > 0) await sleep(1 + Math.random() * 3);
    }
  }
  send({ id: request.id, event: "done", ok: true, violations, busy });
}

setup = JSON.parse(process.argv[2]!) as ChildSetup;
provider = await createLockProvider(setup.config, setup.context);
await provider.init();
process.on("message", (request: ChildRequest) => {
  if (request.op === "release") releases.get(request.holdId)?.();
  else if (request.op === "hold") void hold(request);
  else if (request.op === "count")
    void count(request).catch((error) =>
      send({ id: request.id, event: "done", ok: false, code: codeOf(error) }),
    );
  else if (request.op === "countMany")
    void countMany(request).catch((error) =>
      send({ id: request.id, event: "done", ok: false, code: codeOf(error) }),
    );
  else void tryOnce(request);
});
process.on("disconnect", () => {
  void provider?.close().finally(() => process.exit(0));
});
process.send?.({ id: 0, event: "done", ok: true });
