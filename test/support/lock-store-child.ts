/**
 * A seller process for the lock + store tests: the sell path without HTTP. Forked with IPC, it opens
 * its own store (on a shared data directory) and its own lock provider, and on request:
 * - buy: takes the lock, says "acquired" (with the fence), optionally waits for "go" (so the test can
 *   stop it in between), then writes one purchase through Store.execute under the lock's WriteGuard —
 *   or, with `blind`, under a guard whose signal never fires (a holder that did not notice it lost its
 *   lease, as if paused between the store's last signal check and its commit): only the fence stops it.
 * - burst: `rounds` lock-and-buy batches, recording when each lock was held.
 *
 * argv[2]: JSON of SellerSetup.
 */
import { setTimeout as sleep } from "node:timers/promises";
import type { Command, Order, Outcome } from "../../src/domain/sale.js";
import {
  createLockProvider,
  type LockConfig,
  type LockContext,
} from "../../src/lock/create-lock-provider.js";
import type { StoreConfig } from "../../src/store/create-store.js";
import { createStore } from "../../src/store/create-store.js";

export interface SellerSetup {
  lock: { config: LockConfig; context: LockContext };
  store: StoreConfig;
}

export type SellerRequest =
  | {
      op: "buy";
      id: number;
      key: string;
      eventId: string;
      quantity: number;
      leaseMs: number;
      waitMs: number;
      waitForGo: boolean;
      blind: boolean;
    }
  | { op: "go"; id: number; buyId: number }
  | {
      op: "burst";
      id: number;
      key: string;
      eventId: string;
      rounds: number;
      batch: number;
      leaseMs: number;
      waitMs: number;
      /** Time spent holding the lock before writing, so that overlaps are visible. */
      holdMs: number;
    };

export type SellerMessage =
  | { id: number; event: "acquired"; fence: number | null }
  | {
      id: number;
      event: "done";
      ok: boolean;
      code?: string;
      sold?: number;
      errors?: Record<string, number>;
      /** Wall-clock [start, end] ms of each lock hold (one host: comparable across processes). */
      holds?: [number, number][];
    };

const codeOf = (error: unknown): string =>
  String((error as { code?: unknown } | null)?.code ?? (error as Error)?.message ?? error);
const send = (message: SellerMessage): void => {
  process.send?.(message);
};
const soldIn = (outcomes: Outcome[]): number =>
  outcomes.reduce((sum, outcome) => sum + (outcome.ok ? (outcome.value as Order).quantity : 0), 0);
const purchase = (quantity: number, n: number): Command => ({
  type: "purchase",
  customerId: `seller-${process.pid}-${n}`,
  selection: { quantity, seats: null },
  idempotency: null,
});
const wallMs = (): number => performance.timeOrigin + performance.now();

const setup = JSON.parse(process.argv[2]!) as SellerSetup;
const store = await createStore(setup.store);
await store.init();
const lock = await createLockProvider(setup.lock.config, setup.lock.context);
await lock.init();
const goes = new Map<number, () => void>();
let bought = 0;

async function buy(request: Extract<SellerRequest, { op: "buy" }>): Promise<void> {
  const go = new Promise<void>((resolve) => goes.set(request.id, resolve));
  try {
    const outcomes = await lock.withLock(request.key, request, async (guard) => {
      send({ id: request.id, event: "acquired", fence: guard.fence });
      if (request.waitForGo) await go;
      const used = request.blind ? { ...guard, signal: new AbortController().signal } : guard;
      return store.execute(request.eventId, [purchase(request.quantity, bought++)], used, new Date());
    });
    send({ id: request.id, event: "done", ok: true, sold: soldIn(outcomes) });
  } catch (error) {
    send({ id: request.id, event: "done", ok: false, code: codeOf(error) });
  }
}

async function burst(request: Extract<SellerRequest, { op: "burst" }>): Promise<void> {
  let sold = 0;
  const errors: Record<string, number> = {};
  const holds: [number, number][] = [];
  for (let round = 0; round < request.rounds; round++) {
    try {
      const outcomes = await lock.withLock(request.key, request, async (guard) => {
        const startMs = wallMs();
        try {
          if (request.holdMs > 0) await sleep(request.holdMs);
          const commands = Array.from({ length: request.batch }, () => purchase(1, bought++));
          return await store.execute(request.eventId, commands, guard, new Date());
        } finally {
          holds.push([startMs, wallMs()]);
        }
      });
      sold += soldIn(outcomes);
    } catch (error) {
      const code = codeOf(error);
      errors[code] = (errors[code] ?? 0) + 1;
    }
  }
  send({ id: request.id, event: "done", ok: true, sold, errors, holds });
}

process.on("message", (request: SellerRequest) => {
  if (request.op === "go") goes.get(request.buyId)?.();
  else if (request.op === "buy") void buy(request);
  else void burst(request);
});
process.on("disconnect", () => {
  void Promise.allSettled([lock.close(), store.close()]).finally(() => process.exit(0));
});
process.send?.({ id: 0, event: "done", ok: true });
