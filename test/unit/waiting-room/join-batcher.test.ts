/**
 * Joins answered with their admission times (waiting-room/join-batcher.ts): a batch whose buyers land
 * within the look-ahead runs a pass at once, so the answer that gives a buyer its place gives its time;
 * buyers further back, and every buyer without a pass to run, learn theirs from their polls. On a real
 * SQLite store.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { planEvent } from "../../../src/domain/event.js";
import { newEventId } from "../../../src/domain/ids.js";
import { SqliteStore } from "../../../src/store/sqlite/sqlite-store.js";
import type { JoinResult } from "../../../src/store/waiting-room-store.js";
import { ADMISSION_LOOK_AHEAD_MS } from "../../../src/waiting-room/admission-ticker.js";
import { JoinBatcher } from "../../../src/waiting-room/join-batcher.js";
import { randomRank } from "../../../src/waiting-room/random-rank.js";

describe("join batcher", () => {
  let dir: string;
  let store: SqliteStore;
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "boxoffice-join-batcher-"));
    store = new SqliteStore({
      kind: "sqlite",
      dir,
      layout: "per-event",
      durability: "full",
      maxOpenEvents: 8,
    });
    await store.init();
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const roomAt = async (admissionRatePerSecond: number) => {
    const eventId = newEventId();
    await store.createEvent(
      planEvent({ name: "Room", capacity: 100, maxPerOrder: 4, maxPerCustomer: 4 }, eventId, new Date()),
    );
    const nowMs = Date.now();
    const room = await store.waitingRoom.configure(eventId, {
      admissionRatePerSecond,
      maxActiveShoppers: null,
      sessionSeconds: 600,
      opensAtMs: nowMs - 1000,
      preQueueOpensAtMs: nowMs - 2000,
    });
    assert.ok(room.ok);
    return eventId;
  };
  const admitAtOf = (result: JoinResult) => {
    assert.ok(result.ok, JSON.stringify(result));
    return result.place.admitAtMs;
  };
  let passes = 0;
  const admitNow = async () => {
    passes++;
    await store.waitingRoom.admit(ADMISSION_LOOK_AHEAD_MS);
  };

  it("answers the buyers within the look-ahead with their admission times, the others without", async () => {
    // One a second: slots now, +1, +2 and +3 s are within the 3 s look-ahead; the rest wait.
    const eventId = await roomAt(1);
    const batcher = new JoinBatcher(store.waitingRoom, randomRank, admitNow);
    passes = 0;
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => batcher.join(eventId, `b${i}`)));
    const times = results.map(admitAtOf);
    assert.equal(passes, 1, "one pass for the batch");
    assert.ok(
      times.slice(0, 4).every((t) => t !== null),
      JSON.stringify(times),
    );
    assert.ok(
      times.slice(4).every((t) => t === null),
      JSON.stringify(times),
    );
    assert.equal(times[3]! - times[0]!, 3000, "one second apart: the rate, not the join, sets the times");
    // A later join, behind them, is beyond the look-ahead: no pass is run for it.
    passes = 0;
    assert.equal(admitAtOf(await batcher.join(eventId, "late")), null);
    assert.equal(passes, 0);
  });

  it("leaves the times to the polls without a pass to run, or when the pass fails", async () => {
    const eventId = await roomAt(100);
    const plain = new JoinBatcher(store.waitingRoom, randomRank);
    assert.equal(admitAtOf(await plain.join(eventId, "x")), null);
    const failing = new JoinBatcher(store.waitingRoom, randomRank, () => Promise.reject(new Error("down")));
    assert.equal(admitAtOf(await failing.join(eventId, "y")), null, "answered all the same");
    // The same buyer joining again (one place per identity) is answered its place, now with its time.
    const again = new JoinBatcher(store.waitingRoom, randomRank, admitNow);
    const joined = await again.join(eventId, "x");
    assert.ok(joined.ok && !joined.created);
    assert.notEqual(admitAtOf(joined), null);
  });
});
