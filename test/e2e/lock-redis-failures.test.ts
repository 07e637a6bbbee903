/**
 * Lock servers dying, on throwaway redis-server processes (spare ports 16383–16386, never the shared
 * Redis): a Redlock quorum survives one of three, refuses with LOCK_UNAVAILABLE without a quorum, and
 * recovers; a single Redis killed in the middle of a burst of sales costs only retryable errors, never a
 * wrong sale, and sales resume when it is back — with fences that keep growing although the restarted
 * server lost every key.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { planEvent } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import { createLockProvider } from "../../src/lock/create-lock-provider.js";
import { lockKeyFor, type LockProvider } from "../../src/lock/lock-provider.js";
import { Redis } from "ioredis";
import { RedisServer, startRedisServers } from "../support/redis-servers.js";
import { SellerFixture } from "../support/seller-fixture.js";

const fenceOf = (lock: LockProvider, key: string): Promise<number | null> =>
  lock.withLock(key, { leaseMs: 1000, waitMs: 500 }, async (guard) => guard.fence);

/** The fence, retrying LOCK_UNAVAILABLE for up to 5 s while restarted servers reconnect. */
async function fenceWhenQuorumIsBack(lock: LockProvider, key: string): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      const fence = await fenceOf(lock, key);
      assert.ok(fence !== null, "a Redlock lease carries a fence");
      return fence;
    } catch (error) {
      if ((error as { code?: string }).code !== "LOCK_UNAVAILABLE" || attempt >= 50) throw error;
      await sleep(100);
    }
  }
}

describe("Redlock over three servers", () => {
  let servers: RedisServer[] = [];
  let lock: LockProvider;

  before(async () => {
    servers = await startRedisServers(16384, 3);
    lock = await createLockProvider({ kind: "redis", urls: servers.map((server) => server.url) });
    await lock.init();
  });
  after(async () => {
    await lock?.close();
    await Promise.all(servers.map((server) => server.kill()));
  });

  it("works with one server killed, answers LOCK_UNAVAILABLE with two killed, and recovers", async () => {
    const key = "event:redlock-quorum";
    const first = await fenceOf(lock, key);

    await servers[0]!.kill();
    const withTwo = await fenceOf(lock, key);
    await lock.ping();

    await servers[1]!.kill();
    await assert.rejects(fenceOf(lock, key), { code: "LOCK_UNAVAILABLE" });
    await assert.rejects(lock.ping(), { code: "LOCK_UNAVAILABLE" });

    // Both come back empty: the survivor's counter and the servers' clocks keep the fences growing.
    await Promise.all([servers[0]!.start(), servers[1]!.start()]);
    let recovered: number | null = null;
    for (let i = 0; i < 50 && recovered === null; i++) {
      recovered = await fenceOf(lock, key).catch(() => null);
      if (recovered === null) await sleep(100);
    }
    assert.ok(
      first !== null && withTwo !== null && recovered !== null,
      "no lock after the servers came back",
    );
    assert.ok(first < withTwo && withTwo < recovered, `${first} < ${withTwo} < ${recovered}`);
  });

  it("keeps fences growing when the server that issued the largest one drops out of the quorum", async () => {
    // Server 2's counter runs far ahead of the others (a skewed clock, or a busier key history).
    const key = "event:redlock-fence";
    const ahead = Date.now() * 1000 + 1e9;
    const direct = new Redis(servers[2]!.url);
    try {
      await direct.set(`boxoffice:fence:${key}`, String(ahead));
    } finally {
      direct.disconnect();
    }
    const first = await fenceOf(lock, key);
    assert.ok(first !== null && first > ahead, `${first} should come from the server that is ahead`);
    // Without it, the other two must still issue a larger fence: the first acquisition raised them.
    await servers[2]!.kill();
    // The servers restarted by the test before may still be reconnecting: until both are back, the
    // lock is LOCK_UNAVAILABLE (retryable), as the sell path would see it.
    const second = await fenceWhenQuorumIsBack(lock, key);
    assert.ok(second > first, `${second} > ${first}`);
  });

  it("withLocks: each key's fence keeps growing when the server ahead drops out; no quorum refuses at once", async () => {
    const keys = ["event:redlock-many-a", "event:redlock-many-b"];
    await servers[2]!.start();
    // Server 2 comes back empty; then its counter for key a runs far ahead of the others'.
    const ahead = Date.now() * 1000 + 2e9;
    const direct = new Redis(servers[2]!.url);
    try {
      await direct.set(`boxoffice:fence:${keys[0]}`, String(ahead));
    } finally {
      direct.disconnect();
    }
    let ran = 0;
    const fencesOf = () =>
      lock.withLocks(keys, { leaseMs: 1000 }, async (granted, refused) => {
        ran++;
        assert.equal(refused.size, 0);
        return keys.map((key) => granted.get(key)?.fence as number);
      });
    // Until the lock's client has reconnected to server 2, its counter is not asked.
    let first = await fencesOf();
    for (let i = 0; i < 50 && first[0]! <= ahead; i++) {
      await sleep(100);
      first = await fencesOf();
    }
    assert.ok(first[0]! > ahead, `${first[0]} should come from the server that is ahead`);
    await servers[2]!.kill();
    let second: number[] | null = null;
    for (let i = 0; i < 50 && second === null; i++) {
      second = await fencesOf().catch((error: unknown) => {
        if ((error as { code?: string }).code !== "LOCK_UNAVAILABLE") throw error;
        return null;
      });
      if (second === null) await sleep(100);
    }
    assert.ok(second !== null);
    assert.ok(second[0]! > first[0]! && second[1]! > first[1]!, `${second} > ${first}`);
    // Two of three down: no key can have a quorum, the call fails as a whole and runs no work.
    await servers[1]!.kill();
    const before = ran;
    await assert.rejects(fencesOf(), { code: "LOCK_UNAVAILABLE" });
    assert.equal(ran, before);
    await Promise.all([servers[1]!.start(), servers[2]!.start()]);
  });
});

describe("a single Redis killed in the middle of a burst of sales", () => {
  const redis = new RedisServer(16383);
  let fixture: SellerFixture;
  before(async () => {
    await redis.start();
    fixture = await SellerFixture.open(() => ({ kind: "redis", urls: [redis.url] }));
  });
  after(async () => {
    await fixture.close();
    await redis.kill();
  });

  it("costs only retryable lock errors, never a wrong sale, and sales resume when Redis is back", async () => {
    const capacity = 5000;
    const event = await fixture.store.createEvent(
      planEvent({ name: "Burst", capacity }, newEventId(), new Date()),
    );
    const key = lockKeyFor("event", event.id);
    const sellers = await fixture.startSellers(3);
    const burst = {
      op: "burst",
      key,
      eventId: event.id,
      batch: 4,
      leaseMs: 500,
      waitMs: 300,
      holdMs: 2,
    } as const;

    const running = sellers.map((seller) => seller.run({ ...burst, rounds: 150 }));
    await sleep(400);
    await redis.kill();
    await sleep(700);
    await redis.start();
    const results = await Promise.all(running);

    let sold = 0;
    const errors: Record<string, number> = {};
    for (const result of results) {
      sold += result.sold!;
      for (const [code, count] of Object.entries(result.errors!)) errors[code] = (errors[code] ?? 0) + count;
    }
    assert.ok((errors.LOCK_UNAVAILABLE ?? 0) > 0, `Redis was never missed: ${JSON.stringify(errors)}`);
    for (const code of Object.keys(errors)) {
      assert.ok(["LOCK_UNAVAILABLE", "LOCK_LOST", "LOCK_BUSY"].includes(code), `unexpected error ${code}`);
    }
    // Every ticket the sellers were told they sold is in the store, and no more.
    assert.equal((await fixture.store.getEvent(event.id))?.sold, sold);

    // Back on the restarted (empty) Redis: sales go through again, with no STALE_FENCE.
    let resumed = 0;
    for (let i = 0; i < 50 && resumed === 0; i++) {
      const again = await sellers[0]!.run({ ...burst, rounds: 1 });
      resumed = again.sold!;
      if (resumed === 0) {
        assert.deepEqual(Object.keys(again.errors!), ["LOCK_UNAVAILABLE"]);
        await sleep(100);
      }
    }
    assert.equal(resumed, burst.batch);
    assert.equal((await fixture.store.getEvent(event.id))?.sold, sold + resumed);
  });
});
