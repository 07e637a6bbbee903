/** What a waiting buyer is told (queue-status.ts), when a room opens (opening.ts), and how many a pass lets in. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { admissionWindow } from "../../../src/store/waiting-room-rows.js";
import type { Place, Room } from "../../../src/store/waiting-room-store.js";
import { openingOf } from "../../../src/waiting-room/opening.js";
import { hasAccess, isAdmitted, queueStatusOf } from "../../../src/waiting-room/queue-status.js";

const NOW = Date.parse("2026-12-01T10:00:00Z");
const room: Room = {
  eventId: "evt_x",
  generation: "g",
  admissionRatePerSecond: 100,
  maxActiveShoppers: null,
  sessionSeconds: 600,
  opensAtMs: NOW - 60_000,
  preQueueOpensAtMs: NOW - 120_000,
  drawn: true,
  preQueueCount: 10,
  laterCount: 1000,
  admittedThrough: 500,
  nextSlotMs: NOW,
};
const place = (overrides: Partial<Place>): Place => ({
  identity: "b",
  place: 700,
  preQueue: false,
  joinedAtMs: NOW - 1000,
  admitAtMs: null,
  sessionEndsAtMs: null,
  leftAtMs: null,
  collectedAtMs: null,
  ...overrides,
});

describe("queue status", () => {
  it("tells a waiting buyer the position, the people ahead and the wait at the rate", () => {
    const status = queueStatusOf(room, place({}), NOW);
    assert.equal(status.state, "waiting");
    assert.equal(status.position, 200);
    assert.equal(status.peopleAhead, 199);
    assert.equal(status.estimatedWaitSeconds, 2);
  });

  it("gives nobody a position in the pre-queue before the draw", () => {
    const early = { ...room, drawn: false, opensAtMs: NOW + 30_000 };
    const status = queueStatusOf(early, place({ place: null, preQueue: true }), NOW);
    assert.equal(status.state, "pre-queue");
    assert.equal(status.position, null);
    assert.equal(status.estimatedWaitSeconds, 30);
  });

  it("is admitted from the admission time to the end of the session, not before", () => {
    const scheduled = place({ admitAtMs: NOW + 1500, sessionEndsAtMs: NOW + 601_500 });
    assert.equal(queueStatusOf(room, scheduled, NOW).state, "waiting");
    assert.equal(isAdmitted(scheduled, NOW), false);
    assert.equal(isAdmitted(scheduled, NOW + 1500), true);
    assert.equal(queueStatusOf(room, scheduled, NOW + 1500).state, "admitted");
    assert.equal(isAdmitted(scheduled, NOW + 601_500), false);
    assert.equal(queueStatusOf(room, scheduled, NOW + 601_500).state, "session-ended");
    assert.equal(isAdmitted({ ...scheduled, leftAtMs: NOW + 2000 }, NOW + 3000), false);
  });
});

describe("the access token", () => {
  it("comes with the admission time, before it: valid from then, until the session ends", () => {
    const scheduled = place({ admitAtMs: NOW + 2500, sessionEndsAtMs: NOW + 602_500 });
    assert.equal(hasAccess(place({}), NOW), false, "no admission time yet");
    assert.equal(hasAccess(scheduled, NOW), true, "handed out 2.5 s ahead");
    assert.equal(isAdmitted(scheduled, NOW), false, "but it works only from the admission time");
    assert.equal(queueStatusOf(room, scheduled, NOW).state, "waiting");
    assert.equal(hasAccess(scheduled, NOW + 2500), true);
    assert.equal(hasAccess(scheduled, NOW + 602_500), false, "not once the session is over");
    assert.equal(hasAccess({ ...scheduled, leftAtMs: NOW + 1 }, NOW + 2), false, "nor after leaving");
  });

  it("tells its holder to come back (buy) at the admission time, within one slot after it", () => {
    const scheduled = place({ admitAtMs: NOW + 2500, sessionEndsAtMs: NOW + 602_500 });
    for (const random of [() => 0, () => 0.5, () => 0.999]) {
      const status = queueStatusOf(room, scheduled, NOW, random);
      assert.ok(status.pollAfterMs >= 2500 && status.pollAfterMs <= 2510, `${status.pollAfterMs}`);
    }
  });
});

describe("when to ask again", () => {
  const none = () => 0;
  const most = () => 0.999;

  it("asks at the admission time once it is known, later by less than the spacing of two slots", () => {
    const scheduled = place({ admitAtMs: NOW + 1234, sessionEndsAtMs: NOW + 601_234 });
    const soonest = queueStatusOf(room, scheduled, NOW, none);
    assert.equal(soonest.pollAfterMs, 1234, "exactly then, not rounded to a whole second");
    assert.equal(soonest.pollAfterSeconds, 2);
    assert.equal(soonest.admitAt, new Date(NOW + 1234).toISOString());
    const latest = queueStatusOf(room, scheduled, NOW, most);
    assert.ok(latest.pollAfterMs > 1234 && latest.pollAfterMs <= 1234 + 10, `${latest.pollAfterMs}`);
  });

  it("asks every third of a long wait, and when a pass will have given the slot once that is near", () => {
    // 199 ahead at 100/s: about 2 s, the slot given by a pass within the look-ahead.
    const near = queueStatusOf(room, place({}), NOW, none);
    assert.ok(near.pollAfterMs >= 250 && near.pollAfterMs <= 400, `${near.pollAfterMs}`);
    // 799 ahead: 7.99 s; a pass gives the slot up to 3 s ahead (a pass apart): ask in 5.24 s, or a little
    // earlier (spread).
    const soon = { ...room, laterCount: 2000 };
    assert.equal(queueStatusOf(soon, place({ place: 1300 }), NOW, none).pollAfterMs, 5240);
    const soonest = queueStatusOf(soon, place({ place: 1300 }), NOW, most).pollAfterMs;
    assert.ok(soonest >= 4190 && soonest < 5240, `${soonest}`);
    // 6,000 ahead: 60 s.
    const far = queueStatusOf({ ...room, laterCount: 7000 }, place({ place: 6501 }), NOW, none);
    assert.equal(far.pollAfterMs, 20_000);
    const farthest = queueStatusOf({ ...room, laterCount: 1e6 }, place({ place: 900_000 }), NOW, none);
    assert.equal(farthest.pollAfterMs, 30_000);
    const spread = queueStatusOf({ ...room, laterCount: 7000 }, place({ place: 6501 }), NOW, most);
    assert.ok(spread.pollAfterMs > 20_000 && spread.pollAfterMs <= 24_000, `${spread.pollAfterMs}`);
  });

  it("asks just after the draw in the pre-queue, spread over a second", () => {
    const early = { ...room, drawn: false, opensAtMs: NOW + 600 };
    const inPreQueue = place({ place: null, preQueue: true });
    const first = queueStatusOf(early, inPreQueue, NOW, none).pollAfterMs;
    const last = queueStatusOf(early, inPreQueue, NOW, most).pollAfterMs;
    assert.ok(first >= 600 + 250 && last <= 600 + 250 + 1000 && last > first, `${first}…${last}`);
    const longBefore = queueStatusOf({ ...early, opensAtMs: NOW + 3600_000 }, inPreQueue, NOW, none);
    assert.equal(longBefore.pollAfterMs, 30_000);
    // Nothing changes before the draw: a buyer 8 s or 25 s before it asks once, after it.
    for (const untilMs of [8000, 25_000]) {
      const once = queueStatusOf({ ...early, opensAtMs: NOW + untilMs }, inPreQueue, NOW, none).pollAfterMs;
      assert.equal(once, untilMs + 250, `${untilMs} ms before the opening`);
    }
  });
});

describe("opening", () => {
  it("opens now by default, the pre-queue no later than the opening", () => {
    assert.deepEqual(openingOf({}, null, NOW), { ok: true, opensAtMs: NOW, preQueueOpensAtMs: NOW });
    const later = openingOf({ opensAt: "2026-12-01T11:00:00Z" }, null, NOW);
    assert.deepEqual(later, { ok: true, opensAtMs: NOW + 3600_000, preQueueOpensAtMs: NOW });
    const earlier = openingOf({ opensAt: "2026-12-01T09:00:00Z" }, null, NOW);
    assert.deepEqual(earlier, { ok: true, opensAtMs: NOW - 3600_000, preQueueOpensAtMs: NOW - 3600_000 });
  });

  it("opens with the sale when the admin names no opening, and never in the past", () => {
    const withSale = openingOf({}, "2026-12-01T11:00:00Z", NOW);
    assert.deepEqual(withSale, { ok: true, opensAtMs: NOW + 3600_000, preQueueOpensAtMs: NOW });
    const saleStarted = openingOf({}, "2026-12-01T09:00:00Z", NOW);
    assert.deepEqual(saleStarted, { ok: true, opensAtMs: NOW, preQueueOpensAtMs: NOW });
    const named = openingOf({ opensAt: "2026-12-01T10:30:00Z" }, "2026-12-01T11:00:00Z", NOW);
    assert.deepEqual(
      named,
      { ok: true, opensAtMs: NOW + 1800_000, preQueueOpensAtMs: NOW },
      "the admin's wins",
    );
  });

  it("refuses a pre-queue that opens after the room", () => {
    const opening = openingOf(
      { opensAt: "2026-12-01T10:00:00Z", preQueueOpensAt: "2026-12-01T10:00:01Z" },
      null,
      NOW,
    );
    assert.equal(opening.ok, false);
  });
});

describe("admission window", () => {
  it("gives slots 1/rate apart from the later of the next slot and now, up to the look-ahead", () => {
    assert.deepEqual(admissionWindow(room, NOW, 3000, 0), { count: 301, startMs: NOW, intervalMs: 10 });
    const behind = admissionWindow({ ...room, nextSlotMs: NOW - 60_000 }, NOW, 3000, 0);
    assert.equal(behind.startMs, NOW, "an idle room saves up no burst");
    const ahead = admissionWindow({ ...room, nextSlotMs: NOW + 3001 }, NOW, 3000, 0);
    assert.equal(ahead.count, 0);
  });

  it("never lets in more than the cap allows", () => {
    const capped = { ...room, maxActiveShoppers: 50 };
    assert.equal(admissionWindow(capped, NOW, 3000, 45).count, 5);
    assert.equal(admissionWindow(capped, NOW, 3000, 60).count, 0);
    const capOnly = { ...room, admissionRatePerSecond: null, maxActiveShoppers: 50 };
    assert.deepEqual(admissionWindow(capOnly, NOW, 3000, 10), { count: 40, startMs: NOW, intervalMs: 0 });
  });
});
