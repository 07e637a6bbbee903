/**
 * The arrival schedule: the rate climbs over the ramp and then holds, the counts match the plan, and the
 * launcher is an open loop: every buyer is let in at its time even when no buyer ever gets an answer.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { ArrivalPlan, Clock } from "../../../src/rehearsal/arrival-schedule.js";
import {
  arrivalTimesMs,
  launchArrivals,
  timeOfExpectedArrivals,
} from "../../../src/rehearsal/arrival-schedule.js";
import { seededRandom } from "../../../src/rehearsal/random.js";

const plan = (over: Partial<ArrivalPlan> = {}): ArrivalPlan => ({
  ratePerSecond: 100,
  rampSeconds: 0,
  durationSeconds: 10,
  maxBuyers: 0,
  kind: "uniform",
  ...over,
});

/** A clock that only moves when the launcher sleeps: time passes in the test, not on the wall. */
class FakeClock implements Clock {
  now = 1_000_000;
  sleeps = 0;
  nowMs(): number {
    return this.now;
  }
  sleepUntil(atMs: number): Promise<void> {
    this.sleeps++;
    this.now = Math.max(this.now, atMs);
    return Promise.resolve();
  }
}

describe("arrival schedule", () => {
  it("uniform at a steady rate: rate × duration buyers, evenly spaced, all inside the duration", () => {
    const times = [...arrivalTimesMs(plan(), seededRandom(1))];
    assert.equal(times.length, 999); // the 1000th is due at exactly 10 s, when arrivals stop
    assert.ok(times.every((t, i) => i === 0 || t > times[i - 1]!));
    assert.ok(Math.abs(times[1]! - times[0]! - 10) < 1e-6);
    assert.ok(times.at(-1)! < 10_000);
  });

  it("a ramp: the rate climbs linearly, so the ramp holds half the buyers of as long at full rate", () => {
    const times = [...arrivalTimesMs(plan({ rampSeconds: 4, durationSeconds: 8 }), seededRandom(1))];
    const inRamp = times.filter((t) => t < 4000).length;
    const after = times.length - inRamp;
    assert.equal(inRamp, 199); // 100/s × 4 s / 2, the 200th due at exactly 4 s
    assert.equal(after, 400);
    // During the ramp the gaps shrink: the first second has far fewer buyers than the fourth.
    const first = times.filter((t) => t < 1000).length;
    const fourth = times.filter((t) => t >= 3000 && t < 4000).length;
    assert.ok(first < fourth / 3, `${first} vs ${fourth}`);
    assert.equal(timeOfExpectedArrivals(plan({ rampSeconds: 4 }), 200), 4);
  });

  it("poisson: random gaps around the rate, repeatable from the seed", () => {
    const a = [...arrivalTimesMs(plan({ kind: "poisson", durationSeconds: 60 }), seededRandom(7))];
    const b = [...arrivalTimesMs(plan({ kind: "poisson", durationSeconds: 60 }), seededRandom(7))];
    assert.deepEqual(a, b);
    // 6000 expected; a Poisson count's standard deviation is about 77.
    assert.ok(Math.abs(a.length - 6000) < 400, String(a.length));
    const gaps = a.slice(1).map((t, i) => t - a[i]!);
    assert.ok(new Set(gaps.map((g) => Math.round(g))).size > 20, "the gaps vary");
  });

  it("stops at maxBuyers before the duration ends", () => {
    assert.equal([...arrivalTimesMs(plan({ maxBuyers: 25 }), seededRandom(1))].length, 25);
  });

  it("open loop: every buyer is let in at its time although no buyer is ever answered", async () => {
    const clock = new FakeClock();
    const started: { index: number; scheduledAtMs: number; startedAtMs: number }[] = [];
    const times = [...arrivalTimesMs(plan({ durationSeconds: 2 }), seededRandom(1))];
    const buyers = await launchArrivals(
      times,
      clock.now,
      (arrival) => {
        started.push(arrival);
        return new Promise<void>(() => {}); // never answered
      },
      clock,
    );
    assert.equal(started.length, times.length);
    assert.equal(buyers.length, times.length);
    for (const arrival of started) assert.equal(arrival.startedAtMs, arrival.scheduledAtMs);
    assert.ok(clock.sleeps >= times.length - 1, "it waited for each arrival's time, not for answers");
  });

  it("a late launcher lets the overdue buyers in at once, each keeping its due time", async () => {
    const clock = new FakeClock();
    const start = clock.now;
    clock.now += 500; // the process was busy for half a second
    const started: { scheduledAtMs: number; startedAtMs: number }[] = [];
    await launchArrivals(
      [0, 100, 200, 700],
      start,
      (arrival) => {
        started.push(arrival);
        return Promise.resolve();
      },
      clock,
    );
    assert.deepEqual(
      started.map((a) => [a.scheduledAtMs - start, a.startedAtMs - start]),
      [
        [0, 500],
        [100, 500],
        [200, 500],
        [700, 700],
      ],
    );
  });

  it("an aborted launch stops letting buyers in", async () => {
    const clock = new FakeClock();
    const stop = new AbortController();
    let count = 0;
    await launchArrivals(
      [0, 10, 20, 30, 40],
      clock.now,
      () => {
        if (++count === 2) stop.abort();
        return Promise.resolve();
      },
      clock,
      stop.signal,
    );
    assert.equal(count, 2);
  });
});
