/**
 * The waiting room's store (src/store/waiting-room-store.ts) on every backend, in process against real
 * files and a real PostgreSQL: one place per identity, the draw and the order of places, the cap on
 * active shoppers, leaving, an opening that cannot move once passed, and passes run from two stores at
 * once never letting buyers in closer together than the rate.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { planEvent } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { Store } from "../../src/store/store.js";
import type { JoinResult, RoomSettings } from "../../src/store/waiting-room-store.js";
import { randomRank } from "../../src/waiting-room/random-rank.js";
import { dropSchema, freshSchemaName } from "../support/postgres-test-store.js";
import { postgresSkip, TEST_POSTGRES_URL } from "../support/services.js";

interface Opened {
  store: Store;
  another: Store;
  cleanup(): Promise<void>;
}

const pgSkip = await postgresSkip();
const BACKENDS: { name: string; skip?: string; open(): Promise<Opened> }[] = [
  ...(["single", "per-event"] as const).map((layout) => ({
    name: `sqlite (${layout})`,
    async open(): Promise<Opened> {
      const dir = mkdtempSync(join(tmpdir(), `boxoffice-room-${layout}-`));
      const config = { kind: "sqlite" as const, dir, layout, durability: "full" as const, maxOpenEvents: 8 };
      const store = new SqliteStore(config);
      const another = new SqliteStore(config);
      await store.init();
      await another.init();
      return {
        store,
        another,
        async cleanup() {
          await store.close();
          await another.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    },
  })),
  {
    name: "postgres",
    ...(pgSkip === undefined ? {} : { skip: pgSkip }),
    async open(): Promise<Opened> {
      const schema = freshSchemaName("room_contract");
      const make = async () => {
        const store = new PostgresStore({
          url: TEST_POSTGRES_URL,
          schema,
          poolSize: 4,
          statementTimeoutMs: 5000,
        });
        await store.init();
        return store;
      };
      const store = await make();
      const another = await make();
      return {
        store,
        another,
        async cleanup() {
          await store.close();
          await another.close();
          await dropSchema(TEST_POSTGRES_URL, schema);
        },
      };
    },
  },
];

const settings = (overrides: Partial<RoomSettings> = {}): RoomSettings => ({
  admissionRatePerSecond: 50,
  maxActiveShoppers: null,
  sessionSeconds: 600,
  opensAtMs: Date.now() - 1000,
  preQueueOpensAtMs: Date.now() - 2000,
  ...overrides,
});

function placeOf(result: JoinResult | undefined): number | null {
  assert.ok(result?.ok, JSON.stringify(result));
  return result.place.place;
}

async function newEvent(store: Store): Promise<string> {
  const id = newEventId();
  await store.createEvent(
    planEvent({ name: "Room", capacity: 1000, maxPerOrder: 4, maxPerCustomer: 4 }, id, new Date()),
  );
  return id;
}

for (const backend of BACKENDS) {
  describe(`waiting room store: ${backend.name}`, { skip: backend.skip }, () => {
    const withStores = (name: string, test: (opened: Opened) => Promise<void>) =>
      it(name, async () => {
        const opened = await backend.open();
        try {
          await test(opened);
        } finally {
          await opened.cleanup();
        }
      });

    withStores(
      "gives one place per identity, in one batch and across batches and stores",
      async ({ store, another }) => {
        const eventId = await newEvent(store);
        assert.ok((await store.waitingRoom.configure(eventId, settings())).ok);
        const first = await store.waitingRoom.join(eventId, ["a", "b", "a"], randomRank);
        assert.deepEqual(first.map(placeOf), [1, 2, 1]);
        assert.deepEqual(
          first.map((r) => r.ok && r.created),
          [true, true, false],
        );
        const again = await another.waitingRoom.join(eventId, ["b", "c"], randomRank);
        assert.deepEqual(again.map(placeOf), [2, 3]);
        assert.equal((await store.waitingRoom.room(eventId))?.laterCount, 3);
      },
    );

    withStores(
      "draws the pre-queue at the opening, ahead of later arrivals in arrival order",
      async ({ store }) => {
        const eventId = await newEvent(store);
        const opensAtMs = Date.now() + 60_000;
        assert.ok((await store.waitingRoom.configure(eventId, settings({ opensAtMs }))).ok);
        const early = await store.waitingRoom.join(eventId, ["p1", "p2", "p3", "p4"], randomRank);
        assert.deepEqual(early.map(placeOf), [null, null, null, null], "no place before the draw");
        assert.deepEqual(await store.waitingRoom.admit(3000), [], "nobody let in before the opening");
        // Leaving the pre-queue before the opening gives the place up altogether.
        assert.equal(await store.waitingRoom.leave(eventId, "p4"), true);
        // The opening is brought forward (allowed before it), then later arrivals join.
        assert.ok((await store.waitingRoom.configure(eventId, settings({ opensAtMs: Date.now() - 1 }))).ok);
        const later = await store.waitingRoom.join(eventId, ["l1", "l2"], randomRank);
        assert.deepEqual(later.map(placeOf), [4, 5]);
        const admitted = await store.waitingRoom.admit(3000);
        assert.deepEqual(admitted, [{ eventId, admitted: 5 }]);
        const records = await store.waitingRoom.admissions(eventId);
        assert.deepEqual(new Set(records.slice(0, 3).map((r) => r.identity)), new Set(["p1", "p2", "p3"]));
        assert.deepEqual(
          records.slice(3).map((r) => r.identity),
          ["l1", "l2"],
        );
        assert.deepEqual(
          records.map((r) => r.place),
          [1, 2, 3, 4, 5],
        );
        const moved = await store.waitingRoom.configure(
          eventId,
          settings({ opensAtMs: Date.now() + 60_000 }),
        );
        assert.equal(moved.ok, false, "the opening cannot move once the room has opened");
      },
    );

    withStores(
      "lets in no more than the cap of active shoppers; a buyer who leaves frees a place",
      async ({ store }) => {
        const eventId = await newEvent(store);
        const room = settings({ admissionRatePerSecond: null, maxActiveShoppers: 2 });
        assert.ok((await store.waitingRoom.configure(eventId, room)).ok);
        await store.waitingRoom.join(eventId, ["a", "b", "c", "d"], randomRank);
        assert.deepEqual(await store.waitingRoom.admit(3000), [{ eventId, admitted: 2 }]);
        assert.deepEqual(await store.waitingRoom.admit(3000), [], "the cap is full");
        assert.equal(await store.waitingRoom.leave(eventId, "a"), true);
        assert.deepEqual(await store.waitingRoom.admit(3000), [{ eventId, admitted: 1 }]);
        const view = await store.waitingRoom.place(eventId, "c");
        assert.ok(view?.place?.admitAtMs !== null);
        assert.equal((await store.waitingRoom.place(eventId, "d"))?.place?.admitAtMs, null);
        const [figures] = await store.waitingRoom.figures();
        assert.equal(figures?.waiting, 1);
        assert.equal(figures?.active, 2);
      },
    );

    withStores(
      "never lets buyers in closer together than the rate, with passes from two stores at once",
      async ({ store, another }) => {
        const eventId = await newEvent(store);
        assert.ok((await store.waitingRoom.configure(eventId, settings({ admissionRatePerSecond: 50 }))).ok);
        await store.waitingRoom.join(
          eventId,
          Array.from({ length: 400 }, (_, i) => `buyer-${i}`),
          randomRank,
        );
        // Many passes at once from both stores: together they give each slot once.
        const startedMs = Date.now();
        await Promise.all(
          Array.from({ length: 20 }, (_, i) => (i % 2 === 0 ? store : another).waitingRoom.admit(3000)),
        );
        const records = await store.waitingRoom.admissions(eventId);
        // A look-ahead of 3 s at 50/s: 151 slots, and one more for every 20 ms the passes took.
        const bound = 151 + Math.ceil((Date.now() - startedMs) / 20);
        assert.ok(
          records.length > 0 && records.length <= bound,
          `${records.length} admitted, at most ${bound}`,
        );
        for (let k = 1; k < records.length; k++) {
          assert.ok(records[k]!.admitAtMs - records[k - 1]!.admitAtMs >= 20, `gap at ${k}`);
        }
      },
    );

    withStores(
      "refuses joins before the pre-queue opens, and answers no room for an event without one",
      async ({ store }) => {
        const eventId = await newEvent(store);
        const [none] = await store.waitingRoom.join(eventId, ["a"], randomRank);
        assert.deepEqual(none, { ok: false, reason: "no_room" });
        const preQueueOpensAtMs = Date.now() + 60_000;
        const room = settings({ preQueueOpensAtMs, opensAtMs: preQueueOpensAtMs + 1000 });
        assert.ok((await store.waitingRoom.configure(eventId, room)).ok);
        const [early] = await store.waitingRoom.join(eventId, ["a"], randomRank);
        assert.equal(early?.ok, false);
        assert.equal(await store.waitingRoom.remove(eventId), true);
        assert.equal(await store.waitingRoom.room(eventId), null);
      },
    );
  });
}
