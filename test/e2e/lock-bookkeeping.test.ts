/**
 * The lock and fence bookkeeping stays bounded:
 *
 * - over HTTP, real `boxoffice server` processes with a real store and lock (SQLite + file lock,
 *   PostgreSQL + Redis lock) answer a loop of made-up event, hold and order ids with 404 problem+json and
 *   leave no lock row, Redis key or fence row behind;
 * - the fence counter of a Redis key and the row of a file-lock key disappear once the key has been
 *   unused for `keyIdleMs`, and the fences of a key still grow afterwards;
 * - a store forgets idle fence rows (pruneFences, which the hold sweeper runs), and a stale holder whose key was forgotten on every
 *   side — lock and store — is still refused (STALE_FENCE), while a fresh holder sells.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import { Redis } from "ioredis";
import pg from "pg";
import type { Event } from "../../src/domain/event.js";
import { planEvent } from "../../src/domain/event.js";
import { newEventId, ulid } from "../../src/domain/ids.js";
import type { Command } from "../../src/domain/sale.js";
import { createLockProvider, type LockConfig } from "../../src/lock/create-lock-provider.js";
import { KEY_IDLE_MS as KEY_IDLE_DAY_MS, type LockProvider } from "../../src/lock/lock-provider.js";
import { HoldSweeper } from "../../src/sales/hold-sweeper.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import type { WriteGuard } from "../../src/domain/write-guard.js";
import { HttpClient } from "../support/http-client.js";
import { createTestPostgresStore, dropSchema, freshSchemaName } from "../support/postgres-test-store.js";
import { deleteKeysWithPrefix, testKeyPrefix } from "../support/redis-keys.js";
import { ServerProcess, stopAll } from "../support/server-process.js";
import { postgresSkip, redisSkip, TEST_POSTGRES_URL, TEST_REDIS_URL } from "../support/services.js";

const redisMissing = await redisSkip();
const postgresMissing = await postgresSkip();
const http = new HttpClient(16);
const dirs: string[] = [];

function tempDir(what: string): string {
  const dir = mkdtempSync(join(tmpdir(), `boxoffice-lock-bookkeeping-${what}-`));
  dirs.push(dir);
  return dir;
}

after(async () => {
  await stopAll();
  await http.close();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** Rows of a SQLite table, read by a connection of our own (the server keeps writing its own). */
function sqliteRows(path: string, sql: string): number {
  const db = new Database(path, { readonly: true, fileMustExist: true });
  try {
    return (db.prepare(sql).get() as { n: number }).n;
  } finally {
    db.close();
  }
}

/** Every request a buyer can make that names an event, for the made-up event ulid `fake`. */
function madeUpRequests(fake: string): { method: "POST" | "DELETE"; path: string; body?: unknown }[] {
  const buy = { customerId: "prober", quantity: 1 };
  return [
    { method: "POST", path: `/v1/events/evt_${fake}/orders`, body: buy },
    { method: "POST", path: `/v1/events/evt_${fake}/holds`, body: { ...buy, ttlSeconds: 60 } },
    { method: "POST", path: `/v1/holds/hld_${fake}_${ulid()}/confirm`, body: {} },
    { method: "DELETE", path: `/v1/holds/hld_${fake}_${ulid()}` },
    { method: "POST", path: `/v1/orders/ord_${fake}_${ulid()}/cancel`, body: {} },
  ];
}

/** A made-up ulid: 26 Crockford characters that no event has. */
function fakeUlid(): string {
  return ulid(Date.now() - Math.floor(Math.random() * 1e9));
}

/**
 * Creates one real event and sells one ticket (so the counts below include a real key's bookkeeping),
 * then sends `rounds` made-up ids of every kind; returns those ulids.
 */
async function probe(server: ServerProcess, rounds: number): Promise<{ event: Event; fakes: string[] }> {
  const created = await http.call<Event>(server.url, "/v1/events", {
    admin: true,
    body: { name: "Bookkeeping", capacity: 100 },
  });
  assert.equal(created.status, 201, created.text);
  const sold = await http.call(server.url, `/v1/events/${created.body.id}/orders`, {
    body: { customerId: "real", quantity: 1 },
  });
  assert.equal(sold.status, 201, sold.text);
  const fakes: string[] = [];
  for (let round = 0; round < rounds; round++) {
    const fake = fakeUlid();
    fakes.push(fake);
    const answers = await Promise.all(
      madeUpRequests(fake).map((request) =>
        http.call<{ code?: string; status?: number }>(server.url, request.path, request),
      ),
    );
    for (const answer of answers) {
      assert.equal(answer.status, 404, answer.text);
      assert.match(String(answer.headers["content-type"]), /^application\/problem\+json/);
      assert.match(String(answer.body.code), /^(event|hold|order)_not_found$/);
    }
  }
  return { event: created.body, fakes };
}

describe("made-up ids over HTTP leave no lock or fence behind", () => {
  const ROUNDS = 60;

  it("SQLite store with the file lock: one lock row and one fence row, the real event's", async () => {
    const dataDir = tempDir("file");
    const server = await ServerProcess.start({
      dataDir,
      instanceId: "bookkeeping-file",
      layout: "single",
      // A lock per event (the single layout's own default is one global lock): a made-up id must not
      // leave a key of its own.
      args: ["--lock", "file", "--lock-scope", "event"],
    });
    const { event } = await probe(server, ROUNDS);
    const locks = join(dataDir, "locks.sqlite");
    assert.equal(sqliteRows(locks, "SELECT count(*) AS n FROM locks"), 1);
    assert.equal(sqliteRows(locks, `SELECT count(*) AS n FROM locks WHERE key = 'event:${event.id}'`), 1);
    assert.equal(sqliteRows(join(dataDir, "boxoffice.db"), "SELECT count(*) AS n FROM fences"), 1);
  });

  it(
    "PostgreSQL store with the Redis lock: no Redis key and no fence row for a made-up id",
    { skip: redisMissing ?? postgresMissing },
    async () => {
      const schema = freshSchemaName("bookkeeping");
      const redis = new Redis(TEST_REDIS_URL);
      const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
      await client.connect();
      let realKey: string | null = null;
      try {
        const server = await ServerProcess.start({
          dataDir: tempDir("pg"),
          instanceId: "bookkeeping-pg",
          args: ["--store", `${TEST_POSTGRES_URL}?schema=${schema}`, "--lock", TEST_REDIS_URL],
        });
        const { event, fakes } = await probe(server, ROUNDS);
        const fences = await client.query<{ lock_key: string }>(
          `SELECT lock_key FROM ${pg.escapeIdentifier(schema)}.fences`,
        );
        assert.deepEqual(
          fences.rows.map((row) => row.lock_key),
          [`event:${event.id}`],
        );
        // The shared Redis holds other tests' keys too: look for ours by the made-up ulids.
        const left: string[] = [];
        let cursor = "0";
        do {
          const [next, keys] = await redis.scan(cursor, "MATCH", "boxoffice:*", "COUNT", 1000);
          left.push(...keys.filter((key) => fakes.some((fake) => key.includes(fake))));
          cursor = next;
        } while (cursor !== "0");
        assert.deepEqual(left, []);
        realKey = `boxoffice:fence:event:${event.id}`;
        assert.equal(await redis.exists(realKey), 1, "the real key is counted");
      } finally {
        // The server writes with the default prefix on the shared Redis: leave nothing of ours there.
        if (realKey !== null) await redis.del(realKey);
        redis.disconnect();
        await client.end();
        await dropSchema(TEST_POSTGRES_URL, schema);
      }
    },
  );
});

const purchase = (customerId: string): Command => ({
  type: "purchase",
  customerId,
  selection: { quantity: 1, seats: null },
  idempotency: null,
});

/** The guard a holder got: taken out of withLock, it is a holder that does not know its lease ended. */
function guardOf(lock: LockProvider, key: string): Promise<WriteGuard> {
  return lock.withLock(key, { leaseMs: 1000, waitMs: 2000 }, async (guard) => guard);
}

const KEY_IDLE_MS = 300;

interface LockCase {
  name: string;
  skip: string | undefined;
  make(): Promise<{
    config: LockConfig;
    bookkeeping(key: string): Promise<number>;
    cleanup(): Promise<void>;
  }>;
}

const LOCKS: LockCase[] = [
  {
    name: "file",
    skip: undefined,
    async make() {
      const path = join(tempDir("file-lock"), "locks.sqlite");
      return {
        config: { kind: "file", path, keyIdleMs: KEY_IDLE_MS },
        bookkeeping: async (key) => sqliteRows(path, `SELECT count(*) AS n FROM locks WHERE key = '${key}'`),
        cleanup: async () => {},
      };
    },
  },
  {
    name: "redis",
    skip: redisMissing,
    async make() {
      const keyPrefix = testKeyPrefix("bookkeeping");
      const redis = new Redis(TEST_REDIS_URL);
      return {
        config: { kind: "redis", urls: [TEST_REDIS_URL], keyPrefix, keyIdleMs: KEY_IDLE_MS },
        bookkeeping: (key) => redis.exists(`${keyPrefix}lock:${key}`, `${keyPrefix}fence:${key}`),
        cleanup: async () => {
          redis.disconnect();
          await deleteKeysWithPrefix(TEST_REDIS_URL, keyPrefix);
        },
      };
    },
  },
];

interface StoreCase {
  name: string;
  skip: string | undefined;
  make(): Promise<{ store: Store; fenceRows(): Promise<string[]>; cleanup(): Promise<void> }>;
}

const STORES: StoreCase[] = [
  {
    name: "SQLite",
    skip: undefined,
    async make() {
      const dir = tempDir("store");
      const store = new SqliteStore({
        kind: "sqlite",
        dir,
        layout: "single",
        durability: "full",
        maxOpenEvents: 4,
      });
      await store.init();
      const fenceRows = async (): Promise<string[]> => {
        const db = new Database(join(dir, "boxoffice.db"), { readonly: true });
        try {
          return (
            db.prepare("SELECT lock_key FROM fences ORDER BY lock_key").all() as { lock_key: string }[]
          ).map((row) => row.lock_key);
        } finally {
          db.close();
        }
      };
      return { store, fenceRows, cleanup: () => store.close() };
    },
  },
  {
    name: "PostgreSQL",
    skip: postgresMissing,
    async make() {
      const { store, schema, cleanup } = await createTestPostgresStore("bookkeeping");
      const fenceRows = async (): Promise<string[]> => {
        const client = new pg.Client({ connectionString: TEST_POSTGRES_URL });
        await client.connect();
        try {
          const result = await client.query<{ lock_key: string }>(
            `SELECT lock_key FROM ${pg.escapeIdentifier(schema)}.fences ORDER BY lock_key`,
          );
          return result.rows.map((row) => row.lock_key);
        } finally {
          await client.end();
        }
      };
      return { store, fenceRows, cleanup };
    },
  },
];

for (const lockCase of LOCKS) {
  describe(`${lockCase.name} lock: the bookkeeping of an unused key expires`, { skip: lockCase.skip }, () => {
    let made: Awaited<ReturnType<LockCase["make"]>>;
    let lock: LockProvider;
    before(async () => {
      made = await lockCase.make();
      lock = await createLockProvider(made.config);
      await lock.init();
    });
    after(async () => {
      await lock?.close();
      await made?.cleanup();
    });

    it("forgets a released key after keyIdleMs, and its fences still grow", async () => {
      const key = `event:idle-${randomBytes(4).toString("hex")}`;
      const first = (await guardOf(lock, key)).fence;
      assert.ok(first !== null);
      assert.ok((await made.bookkeeping(key)) > 0, "the key's bookkeeping is there while it is in use");
      // The file lock sweeps after releases: keep another key busy meanwhile, as a live instance would.
      let forgotten = false;
      for (let i = 0; i < 40 && !forgotten; i++) {
        await sleep(KEY_IDLE_MS / 4);
        await guardOf(lock, `event:other-${randomBytes(4).toString("hex")}`);
        forgotten = (await made.bookkeeping(key)) === 0;
      }
      assert.ok(forgotten, `the bookkeeping of ${key} is still there after ${KEY_IDLE_MS * 10} ms`);
      const again = (await guardOf(lock, key)).fence;
      assert.ok(again !== null && again > first, `${again} > ${first} after the key was forgotten`);
    });

    for (const storeCase of STORES) {
      it(
        `with the ${storeCase.name} store: a stale holder is refused after the lock and the store forgot its key`,
        { skip: storeCase.skip },
        async () => {
          const { store, fenceRows, cleanup } = await storeCase.make();
          try {
            const now = new Date();
            const plan = planEvent({ name: "Stale holder", capacity: 10 }, newEventId(now.getTime()), now);
            await store.createEvent(plan);
            const key = `event:${plan.id}`;
            // A takes the lock and stops before its write; its lease runs out; B takes the lock and sells.
            const stale = await guardOf(lock, key);
            const fresh = await guardOf(lock, key);
            assert.ok(fresh.fence !== null && stale.fence !== null && fresh.fence > stale.fence);
            assert.equal((await store.execute(plan.id, [purchase("b")], fresh, new Date()))[0]?.ok, true);
            assert.deepEqual(await fenceRows(), [key]);
            // Everything about the key is forgotten: the lock's bookkeeping and the store's fence row.
            for (let i = 0; i < 40 && (await made.bookkeeping(key)) > 0; i++) {
              await sleep(KEY_IDLE_MS / 4);
              await guardOf(lock, `event:other-${randomBytes(4).toString("hex")}`);
            }
            assert.equal(await made.bookkeeping(key), 0);
            assert.equal(await store.pruneFences(new Date()), 1);
            assert.deepEqual(await fenceRows(), [""], "only the floor is left");
            // A wakes up and writes: refused, though neither the lock nor the store remembers the key.
            await assert.rejects(store.execute(plan.id, [purchase("a")], stale, new Date()), {
              code: "STALE_FENCE",
            });
            // A holder that takes the lock now sells.
            const later = await guardOf(lock, key);
            assert.equal((await store.execute(plan.id, [purchase("c")], later, new Date()))[0]?.ok, true);
            assert.equal((await store.getEvent(plan.id))?.sold, 2);
          } finally {
            await cleanup();
          }
        },
      );
    }
  });
}

describe("the hold sweeper prunes idle fences", () => {
  it("forgets a key whose fence is a day old, and keeps the floor", async () => {
    const [sqlite] = STORES;
    const { store, fenceRows, cleanup } = await sqlite!.make();
    try {
      const now = new Date();
      const plan = planEvent({ name: "Swept", capacity: 10 }, newEventId(now.getTime()), now);
      await store.createEvent(plan);
      const guard = (fence: number): WriteGuard => ({
        lockKey: `event:${plan.id}`,
        fence,
        signal: new AbortController().signal,
      });
      await store.execute(plan.id, [purchase("a")], guard(now.getTime() * 1000), now);
      const sweep = (at: Date) =>
        new HoldSweeper({
          store,
          intervalMs: 60_000,
          limit: 100,
          pruneIntervalMs: 0,
          now: () => at,
        }).sweepOnce();
      await sweep(new Date(now.getTime() + KEY_IDLE_DAY_MS - 60_000));
      assert.deepEqual(await fenceRows(), [`event:${plan.id}`], "not idle for a day yet");
      await sweep(new Date(now.getTime() + KEY_IDLE_DAY_MS + 60_000));
      assert.deepEqual(await fenceRows(), [""]);
    } finally {
      await cleanup();
    }
  });
});
