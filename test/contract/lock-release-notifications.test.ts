/**
 * Release notifications (LockProvider.onReleased) on the real backends: a waiter in another instance
 * learns of a release at once instead of at the end of its backoff. The waiters here back off for ten
 * minutes after a busy try, so only the notification can grant them before the test ends; no timing is
 * asserted. A lost notification still ends in the lock by the ordinary backoff.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { FileLock } from "../../src/lock/file/file-lock.js";
import type { LockProvider } from "../../src/lock/lock-provider.js";
import { RedisLock } from "../../src/lock/redis/redis-lock.js";
import { deleteKeysWithPrefix, testKeyPrefix } from "../support/redis-keys.js";
import { startRedisServers, type RedisServer } from "../support/redis-servers.js";
import { redisSkip, TEST_REDIS_URL } from "../support/services.js";

/** A waiter that, without a notification, would sleep ten minutes after its first busy try. */
const PATIENT = { firstRetryMs: 600_000, maxRetryMs: 600_000 };
const LEASE = { leaseMs: 5000 };

interface Instances {
  /** Two instances of the provider on one backend; `quiet` publishes no releases. */
  make(options: { patient?: boolean; quiet?: boolean }): Promise<LockProvider>;
  cleanup(): Promise<void>;
}

/** Holds `key` on `provider` until the returned function is called; resolves once it is held. */
async function hold(provider: LockProvider, key: string): Promise<{ release: () => Promise<void> }> {
  let letGo = (): void => {};
  const gate = new Promise<void>((resolve) => (letGo = resolve));
  let held = (): void => {};
  const taken = new Promise<void>((resolve) => (held = resolve));
  const holding = provider.withLock(key, { ...LEASE, waitMs: 1000 }, async () => {
    held();
    await gate;
  });
  await Promise.race([taken, holding]);
  return {
    release: async () => {
      letGo();
      await holding;
    },
  };
}

function describeNotifications(
  name: string,
  skip: string | undefined,
  setup: () => Promise<Instances>,
): void {
  describe(`release notifications (${name})`, { skip }, () => {
    let instances: Instances;
    const open: LockProvider[] = [];
    const make = async (options: { patient?: boolean; quiet?: boolean } = {}): Promise<LockProvider> => {
      const provider = await instances.make(options);
      open.push(provider);
      return provider;
    };
    before(async () => {
      instances = await setup();
    });
    after(async () => {
      await Promise.all(open.map((provider) => provider.close()));
      await instances.cleanup();
    });

    it("grants a waiter in another instance right after the holder releases", async () => {
      const [holder, waiter] = [await make(), await make({ patient: true })];
      const { release } = await hold(holder, "k1");
      let granted = false;
      const waiting = waiter.withLock("k1", { ...LEASE, waitMs: 3_600_000 }, async (guard) => {
        granted = true;
        return guard.fence;
      });
      // Let its first try find the lock busy (were it later, it would simply find it free).
      await sleep(50);
      assert.equal(granted, false, "not granted while held");
      await release();
      assert.ok((await waiting) !== undefined);
    });

    it("tells withLocks' caller of the release of each key it was refused (one release of several keys)", async () => {
      const [holder, waiter] = [await make(), await make()];
      let letGo = (): void => {};
      const gate = new Promise<void>((resolve) => (letGo = resolve));
      let held = (): void => {};
      const taken = new Promise<void>((resolve) => (held = resolve));
      const holding = holder.withLocks(["m1", "m2"], LEASE, async (granted) => {
        assert.equal(granted.size, 2);
        held();
        await gate;
      });
      await taken;
      const refused = await waiter.withLocks(["m1", "m2"], LEASE, async (_granted, busy) => [...busy.keys()]);
      assert.deepEqual(refused.sort(), ["m1", "m2"]);
      const heard = ["m1", "m2"].map(
        (key) =>
          new Promise<void>((resolve) => {
            const stop = waiter.onReleased!(key, () => (stop(), resolve()));
          }),
      );
      letGo();
      await holding;
      await Promise.all(heard);
      const taken2 = await waiter.withLocks(["m1", "m2"], LEASE, async (granted) => [...granted.keys()]);
      assert.deepEqual(taken2.sort(), ["m1", "m2"]);
    });

    it("still grants the waiter by its backoff when the release is not told", async () => {
      const [holder, waiter] = [await make({ quiet: true }), await make()];
      const { release } = await hold(holder, "k2");
      const waiting = waiter.withLock("k2", { ...LEASE, waitMs: 60_000 }, async () => "granted");
      await sleep(30);
      await release();
      assert.equal(await waiting, "granted");
    });

    it("close() wakes a waiting withLock, which then fails with LOCK_UNAVAILABLE", async () => {
      const holder = await make();
      const waiter = await instances.make({ patient: true });
      const { release } = await hold(holder, "k3");
      const waiting = waiter.withLock("k3", { ...LEASE, waitMs: 3_600_000 }, async () => "granted");
      await sleep(50);
      await waiter.close();
      await assert.rejects(waiting, { code: "LOCK_UNAVAILABLE" });
      await release();
    });
  });
}

describeNotifications("file", undefined, async () => {
  const dir = mkdtempSync(join(os.tmpdir(), "boxoffice-release-"));
  const path = join(dir, "locks.sqlite");
  return {
    make: async ({ patient, quiet }) => {
      const lock = new FileLock({ path, releaseNotifications: !quiet, ...(patient ? PATIENT : {}) });
      await lock.init();
      assert.ok(existsSync(`${path}-released`) || quiet);
      return lock;
    },
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  };
});

describeNotifications("redis", await redisSkip(), async () => {
  const keyPrefix = testKeyPrefix("release-notifications");
  return {
    make: async ({ patient, quiet }) => {
      const lock = new RedisLock({
        urls: [TEST_REDIS_URL],
        keyPrefix,
        releaseNotifications: !quiet,
        ...(patient ? PATIENT : {}),
      });
      await lock.init();
      return lock;
    },
    cleanup: () => deleteKeysWithPrefix(TEST_REDIS_URL, keyPrefix),
  };
});

describe("release notifications (redis restarted)", { skip: await redisSkip() }, () => {
  let server: RedisServer;
  const locks: RedisLock[] = [];
  before(async () => {
    [server] = (await startRedisServers(16383, 1)) as [RedisServer];
  });
  after(async () => {
    await Promise.all(locks.map((lock) => lock.close()));
    await server.kill();
  });

  it("answers LOCK_UNAVAILABLE while Redis is down, and tells of releases again once it is back", async () => {
    const [holder, waiter] = [0, 1].map(() => new RedisLock({ urls: [server.url], keyPrefix: "r:" })) as [
      RedisLock,
      RedisLock,
    ];
    locks.push(holder, waiter);
    await Promise.all([holder.init(), waiter.init()]);
    await server.kill();
    await assert.rejects(
      waiter.withLock("k", { ...LEASE, waitMs: 1000 }, async () => undefined),
      { code: "LOCK_UNAVAILABLE" },
    );
    await server.start();
    for (;;) {
      const up = await Promise.all([holder.ping(), waiter.ping()]).then(
        () => true,
        () => false,
      );
      if (up) break;
      await sleep(20);
    }
    const { release } = await hold(holder, "k");
    const refused = await waiter.withLocks(["k"], LEASE, async (_granted, busy) => busy.size);
    assert.equal(refused, 1);
    // Heard either as the release itself or as the wake-up of the subscriber's resubscription: both
    // mean "try again"; a subscriber that never came back would leave this waiting for ever.
    const heard = new Promise<void>((resolve) => {
      const stop = waiter.onReleased("k", () => (stop(), resolve()));
    });
    await release();
    await heard;
    assert.equal(await waiter.withLocks(["k"], LEASE, async (granted) => granted.size), 1);
  });
});
