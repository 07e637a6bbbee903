/**
 * Lock scope, seen from the lock hold times of two seller processes on two different events: under
 * `event` they hold their locks at the same time; under `global` (the seed's database-wide lock) never.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { planEvent } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import type { LockConfig } from "../../src/lock/create-lock-provider.js";
import { lockKeyFor, type LockScope } from "../../src/lock/lock-provider.js";
import type { StoreConfig } from "../../src/store/create-store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { ForkedChild } from "../support/forked-child.js";
import type { SellerMessage, SellerRequest } from "../support/lock-store-child.js";
import { deleteKeysWithPrefix, testKeyPrefix } from "../support/redis-keys.js";
import { redisSkip, TEST_REDIS_URL } from "../support/services.js";

const SELLER = fileURLToPath(new URL("../support/lock-store-child.js", import.meta.url));
type Interval = [number, number];

/** Pairs of hold intervals, one from each seller, that overlap in time. */
function overlaps(a: Interval[], b: Interval[]): number {
  let count = 0;
  for (const [startA, endA] of a) for (const [startB, endB] of b) if (startA < endB && startB < endA) count++;
  return count;
}

const redisPrefix = testKeyPrefix("lock-scope");
const providers: { name: string; skip: string | undefined; lock: (dir: string) => LockConfig }[] = [
  { name: "file", skip: undefined, lock: (dir) => ({ kind: "file", path: join(dir, "locks.sqlite") }) },
  {
    name: "redis",
    skip: await redisSkip(),
    lock: () => ({ kind: "redis", urls: [TEST_REDIS_URL], keyPrefix: redisPrefix }),
  },
];

for (const provider of providers) {
  describe(`lock scope (${provider.name})`, { skip: provider.skip }, () => {
    let dir: string;
    let storeConfig: StoreConfig;
    let store: SqliteStore;
    const sellers: ForkedChild<SellerRequest, SellerMessage>[] = [];

    before(async () => {
      dir = mkdtempSync(join(os.tmpdir(), "boxoffice-lock-scope-"));
      storeConfig = { kind: "sqlite", dir, layout: "per-event", durability: "normal", maxOpenEvents: 8 };
      store = new SqliteStore(storeConfig);
      await store.init();
      const setup = { lock: { config: provider.lock(dir), context: {} }, store: storeConfig };
      sellers.push(
        ...(await Promise.all(
          [1, 2].map(() => ForkedChild.start<SellerRequest, SellerMessage>(SELLER, setup)),
        )),
      );
    });
    after(async () => {
      await Promise.all(sellers.map((seller) => seller.stop()));
      await store.close();
      rmSync(dir, { recursive: true, force: true });
      if (provider.name === "redis") await deleteKeysWithPrefix(TEST_REDIS_URL, redisPrefix);
    });

    const sellBoth = async (scope: LockScope) => {
      const events = await Promise.all(
        [1, 2].map((n) =>
          store.createEvent(planEvent({ name: `Scope ${n}`, capacity: 1000 }, newEventId(), new Date())),
        ),
      );
      const results = await Promise.all(
        sellers.map((seller, index) =>
          seller.run({
            op: "burst",
            key: lockKeyFor(scope, events[index]!.id),
            eventId: events[index]!.id,
            rounds: 12,
            batch: 2,
            leaseMs: 2000,
            waitMs: 5000,
            holdMs: 15,
          }),
        ),
      );
      for (const [index, result] of results.entries()) {
        assert.deepEqual({ sold: result.sold, errors: result.errors }, { sold: 24, errors: {} });
        assert.equal((await store.getEvent(events[index]!.id))?.sold, 24);
      }
      return overlaps(results[0]!.holds!, results[1]!.holds!);
    };

    it("under `event`, two events sell at the same time: their lock holds overlap", async () => {
      assert.ok((await sellBoth("event")) > 0, "the two events never held their locks at the same time");
    });

    it("under `global`, their lock holds never overlap", async () => {
      assert.equal(await sellBoth("global"), 0);
    });
  });
}
