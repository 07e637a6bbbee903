/**
 * A holder paused past its lease (SIGSTOP) while another process takes the lock and sells; when it
 * resumes (SIGCONT), its write is refused — by its aborted signal, or, if it did not notice (a pause
 * between the store's last signal check and its commit), by the fence — and nothing is oversold.
 * Sellers are real processes writing through the store, each with its own lock provider: the leases are
 * renewed by processes that do nothing else, never by the test runner's event loop. Every stack a lock
 * is fenced on: SQLite with the file lock and with Redis, PostgreSQL with Redis (the documented scale-out
 * stack) and with Redlock over three Redis servers of the test's own.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { planEvent } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import type { LockConfig } from "../../src/lock/create-lock-provider.js";
import { lockKeyFor } from "../../src/lock/lock-provider.js";
import { freePort } from "../support/backend-fixture.js";
import { deleteKeysWithPrefix, testKeyPrefix } from "../support/redis-keys.js";
import { RedisServer } from "../support/redis-servers.js";
import { leasingProviders, SellerFixture } from "../support/seller-fixture.js";
import { postgresSkip, redisSkip, TEST_REDIS_URL } from "../support/services.js";
import { skipUnlessInstalled } from "../support/tools.js";

interface PauseStack {
  name: string;
  store: "sqlite" | "postgres";
  skip: string | undefined;
  /** Starts what the lock needs; the lock's config for a data directory. */
  start(): Promise<(dir: string) => LockConfig>;
  cleanup(): Promise<void>;
}

const postgresSkipped = await postgresSkip();
const keyPrefix = testKeyPrefix("lock-pause-pg");
const redlockServers: RedisServer[] = [];
const stacks: PauseStack[] = [
  ...(await leasingProviders("lock-pause")).map((provider) => ({
    name: `SQLite, ${provider.name} lock`,
    store: "sqlite" as const,
    skip: provider.skip,
    start: async () => provider.lock,
    cleanup: provider.cleanup,
  })),
  {
    name: "PostgreSQL + Redis",
    store: "postgres",
    skip: postgresSkipped ?? (await redisSkip()),
    start: async () => () => ({ kind: "redis", urls: [TEST_REDIS_URL], keyPrefix }),
    cleanup: () => deleteKeysWithPrefix(TEST_REDIS_URL, keyPrefix),
  },
  {
    name: "PostgreSQL + Redlock over 3 Redis servers",
    store: "postgres",
    skip: postgresSkipped ?? skipUnlessInstalled("redis-server"),
    start: async () => {
      for (let index = 0; index < 3; index++) {
        const server = new RedisServer(await freePort());
        await server.start();
        redlockServers.push(server);
      }
      return () => ({ kind: "redis", urls: redlockServers.map((server) => server.url) });
    },
    cleanup: async () => {
      await Promise.all(redlockServers.map((server) => server.kill()));
    },
  },
];

// The stacks run at the same time (each its own store and lock keys): most of a test is processes starting.
describe("paused lock holders", { concurrency: true }, () => {
  for (const stack of stacks) {
    describe(`a paused lock holder (${stack.name})`, { skip: stack.skip }, () => {
      let fixture: SellerFixture;
      before(async () => {
        fixture = await SellerFixture.open(await stack.start(), { store: stack.store });
      });
      after(async () => {
        await fixture?.close();
        await stack.cleanup();
      });

      // On PostgreSQL, only the holder that did not notice: the signal's path is the sell path's, the same on
      // every store; the fence is the store's own.
      for (const blind of stack.store === "postgres" ? [true] : [false, true]) {
        const how = blind ? "did not notice and is stopped by the fence" : "is told through its signal";
        it(`${how}; nothing is oversold`, async () => {
          const capacity = 10;
          const event = await fixture.store.createEvent(
            planEvent({ name: "Pause", capacity }, newEventId(), new Date()),
          );
          const key = lockKeyFor("event", event.id);
          const paused = await fixture.startSeller();
          const other = await fixture.startSeller();
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

          const final = await fixture.store.getEvent(event.id);
          assert.equal(final?.sold, 8);
          assert.ok(final.sold + final.held <= capacity);
        });
      }
    });
  }
});
