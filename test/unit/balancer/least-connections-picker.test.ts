import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { Backend } from "../../../src/balancer/backend.js";
import { LeastConnectionsPicker, type PickOptions } from "../../../src/balancer/least-connections-picker.js";

const OPTIONS: PickOptions = { nowMs: 1_000_000, slowStartMs: 10_000, maxActive: 100 };

function backends(...weights: number[]): Backend[] {
  return weights.map(
    (weight, index) => new Backend(`b${index + 1}`, `http://127.0.0.1:${9100 + index}`, weight),
  );
}

describe("LeastConnectionsPicker", () => {
  it("picks the instance with the fewest in-flight requests", () => {
    const list = backends(1, 1, 1);
    list[0]!.active = 3;
    list[1]!.active = 1;
    list[2]!.active = 2;
    const picker = new LeastConnectionsPicker();
    for (let round = 0; round < 10; round++) assert.equal(picker.pick(list, OPTIONS)?.id, "b2");
  });

  it("breaks ties by rotation, not always the first", () => {
    const list = backends(1, 1, 1);
    const picker = new LeastConnectionsPicker();
    const seen = new Map<string, number>();
    for (let round = 0; round < 30; round++) {
      const id = picker.pick(list, OPTIONS)!.id;
      seen.set(id, (seen.get(id) ?? 0) + 1);
    }
    assert.deepEqual([...seen.entries()].sort(), [
      ["b1", 10],
      ["b2", 10],
      ["b3", 10],
    ]);
  });

  it("weighs load by weight: an instance of weight 3 carries three times the requests", () => {
    const list = backends(3, 1);
    const picker = new LeastConnectionsPicker();
    for (let placed = 0; placed < 40; placed++) picker.pick(list, OPTIONS)!.active++;
    assert.equal(list[0]!.active, 30);
    assert.equal(list[1]!.active, 10);
  });

  it("skips down, draining and full instances, and answers undefined when none has room", () => {
    const list = backends(1, 1, 1);
    list[0]!.state = "down";
    list[1]!.state = "draining";
    list[2]!.active = 100;
    assert.equal(new LeastConnectionsPicker().pick(list, OPTIONS), undefined);
    list[2]!.active = 99;
    assert.equal(new LeastConnectionsPicker().pick(list, OPTIONS)?.id, "b3");
  });

  it("avoids instances the request already failed on, unless no other has room", () => {
    const list = backends(1, 1);
    list[1]!.active = 50;
    const picker = new LeastConnectionsPicker();
    assert.equal(picker.pick(list, { ...OPTIONS, exclude: new Set([list[0]!]) })?.id, "b2");
    list[1]!.active = 100;
    assert.equal(picker.pick(list, { ...OPTIONS, exclude: new Set([list[0]!]) })?.id, "b1");
  });

  it("gives an instance in slow start a smaller share that grows to its full weight", () => {
    const list = backends(1, 1);
    list[1]!.slowStartSinceMs = OPTIONS.nowMs - 1000; // 10% of the way through a 10 s slow start
    const picker = new LeastConnectionsPicker();
    for (let placed = 0; placed < 44; placed++) picker.pick(list, OPTIONS)!.active++;
    assert.ok(list[1]!.active <= 5, `slow-starting instance took ${list[1]!.active} of 44`);
    const later = { ...OPTIONS, nowMs: OPTIONS.nowMs + 20_000 };
    assert.equal(list[1]!.effectiveWeight(later.nowMs, later.slowStartMs), 1000);
    assert.equal(list[1]!.slowStartSinceMs, undefined);
  });

  it("always places on an instance holding the least load, whatever finished before", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 6 }),
        fc.array(fc.oneof(fc.constant(-1), fc.nat(5)), { minLength: 1, maxLength: 200 }),
        (count, steps) => {
          const list = backends(...Array.from({ length: count }, () => 1));
          const picker = new LeastConnectionsPicker();
          for (const step of steps) {
            if (step === -1) {
              const least = Math.min(...list.map((backend) => backend.active));
              const chosen = picker.pick(list, OPTIONS)!;
              assert.equal(chosen.active, least);
              chosen.active++;
            } else {
              const backend = list[step % count]!;
              if (backend.active > 0) backend.active--;
            }
          }
        },
      ),
    );
  });
});
