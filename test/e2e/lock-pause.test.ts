/**
 * A holder paused past its lease (SIGSTOP) while another process takes the lock and sells; when it
 * resumes (SIGCONT), its write is refused — by its aborted signal, or, if it did not notice (a pause
 * between the store's last signal check and its commit), by the fence — and nothing is oversold.
 * Sellers are real processes writing through the SQLite store, each with its own lock provider.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { planEvent } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import type { LockConfig } from "../../src/lock/create-lock-provider.js";
import { lockKeyFor } from "../../src/lock/lock-provider.js";
import type { StoreConfig } from "../../src/store/create-store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { ForkedChild } from "../support/forked-child.js";
import type { SellerMessage, SellerRequest } from "../support/lock-store-child.js";
import { deleteKeysWithPrefix, testKeyPrefix } from "../support/redis-keys.js";
import { redisSkip, TEST_REDIS_URL } from "../support/services.js";

const SELLER = fileURLToPath(new URL("../support/lock-store-child.js", import.meta.url));
type Seller = ForkedChild<SellerRequest, SellerMessage>;

const redisPrefix = testKeyPrefix("lock-pause");
const providers: { name: string; skip: string | undefined; lock: (dir: string) => LockConfig }[] = [
  { name: "file", skip: undefined, lock: (dir) => ({ kind: "file", path: join(dir, "locks.sqlite") }) },
  {
    name: "redis",
    skip: await redisSkip(),
    lock: () => ({ kind: "redis", urls: [TEST_REDIS_URL], keyPrefix: redisPrefix }),
  },
];

for (const provider of providers) {
  describe(`a paused lock holder (${provider.name})`, { skip: provider.skip }, () => {
    let dir: string;
    let storeConfig: StoreConfig;
    let store: SqliteStore;
    const sellers: Seller[] = [];
    const startSeller = async (): Promise<Seller> => {
      const seller = await ForkedChild.start<SellerRequest, SellerMessage>(SELLER, {
        lock: { config: provider.lock(dir), context: {} },
        store: storeConfig,
      });
      sellers.push(seller);
      return seller;
    };

    before(async () => {
      dir = mkdtempSync(join(os.tmpdir(), "boxoffice-lock-pause-"));
      storeConfig = { kind: "sqlite", dir, layout: "per-event", durability: "normal", maxOpenEvents: 8 };
      store = new SqliteStore(storeConfig);
      await store.init();
    });
    after(async () => {
      await Promise.all(sellers.map((seller) => seller.stop()));
      await store.close();
      rmSync(dir, { recursive: true, force: true });
      if (provider.name === "redis") await deleteKeysWithPrefix(TEST_REDIS_URL, redisPrefix);
    });

    for (const blind of [false, true]) {
      const how = blind ? "did not notice and is stopped by the fence" : "is told through its signal";
      it(`${how}; nothing is oversold`, async () => {
        const capacity = 10;
        const event = await store.createEvent(
          planEvent({ name: "Pause", capacity }, newEventId(), new Date()),
        );
        const key = lockKeyFor("event", event.id);
        const [paused, other] = await Promise.all([startSeller(), startSeller()]);
        const leaseMs = 300;

        // 4 + 8 > 10: the late write must be refused, though on its own it would fit.
        const lateId = paused.send({
          op: "buy",
          key,
          eventId: event.id,
          quantity: 4,
          leaseMs,
          waitMs: 1000,
          waitForGo: true,
          blind,
        });
        const late = await paused.next(lateId, "acquired");
        paused.process.kill("SIGSTOP");
        await sleep(leaseMs * 2);

        const onTime = await other.run({
          op: "buy",
          key,
          eventId: event.id,
          quantity: 8,
          leaseMs: 5000,
          waitMs: 3000,
          waitForGo: false,
          blind: false,
        });
        assert.deepEqual({ ok: onTime.ok, sold: onTime.sold }, { ok: true, sold: 8 });

        paused.process.kill("SIGCONT");
        paused.send({ op: "go", buyId: lateId });
        const refused = await paused.next(lateId, "done");
        assert.equal(refused.ok, false);
        if (blind) assert.equal(refused.code, "STALE_FENCE");
        else assert.ok(["LOCK_LOST", "STALE_FENCE"].includes(refused.code!), refused.code);
        assert.ok(late.fence !== null);

        const final = await store.getEvent(event.id);
        assert.equal(final?.sold, 8);
        assert.ok(final.sold + final.held <= capacity);
      });
    }
  });
}
