/** `--placement event`: the picker's affinity (rendezvous hashing), and where it gives way. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Backend } from "../../../src/balancer/backend.js";
import { LeastConnectionsPicker, type PickOptions } from "../../../src/balancer/least-connections-picker.js";

const OPTIONS: PickOptions = { nowMs: 1_000_000, slowStartMs: 10_000, maxActive: 100 };
const KEYS = Array.from({ length: 300 }, (_, i) => `evt_${String(i).padStart(26, "0")}`);

function backends(count: number): Backend[] {
  return Array.from(
    { length: count },
    (_, index) => new Backend(`b${index + 1}`, `http://127.0.0.1:${9100 + index}`, 1),
  );
}

describe("LeastConnectionsPicker with an affinity key", () => {
  it("sends one key to one instance whatever the loads, and spreads keys over every instance", () => {
    const list = backends(3);
    const picker = new LeastConnectionsPicker();
    const share = new Map<string, number>();
    for (const key of KEYS) {
      const first = picker.pick(list, { ...OPTIONS, affinity: key })!;
      share.set(first.id, (share.get(first.id) ?? 0) + 1);
      // Busier now than the others: least connections would move on, the affinity does not.
      first.active = 50;
      for (let round = 0; round < 3; round++)
        assert.equal(picker.pick(list, { ...OPTIONS, affinity: key }), first);
      first.active = 0;
    }
    assert.deepEqual([...share.keys()].sort(), ["b1", "b2", "b3"]);
    for (const count of share.values()) assert.ok(count > 60, `uneven spread: ${[...share.values()]}`);
  });

  it("agrees across pickers and list orders (every balancer with the same instances)", () => {
    const list = backends(4);
    const reversed = [...list].reverse();
    for (const key of KEYS) {
      const a = new LeastConnectionsPicker().pick(list, { ...OPTIONS, affinity: key });
      const b = new LeastConnectionsPicker().pick(reversed, { ...OPTIONS, affinity: key });
      assert.equal(a, b);
    }
  });

  it("moves only the keys of an instance that leaves", () => {
    const list = backends(4);
    const picker = new LeastConnectionsPicker();
    const before = new Map(KEYS.map((key) => [key, picker.pick(list, { ...OPTIONS, affinity: key })!]));
    const gone = list[1]!;
    const rest = list.filter((backend) => backend !== gone);
    let moved = 0;
    for (const key of KEYS) {
      const after = picker.pick(rest, { ...OPTIONS, affinity: key })!;
      if (before.get(key) === gone) moved++;
      else assert.equal(after, before.get(key), `${key} moved though its instance stayed`);
    }
    assert.ok(moved > 0);
  });

  it("gives way when its instance is down, full or already failed, to another instance with room", () => {
    const list = backends(3);
    const picker = new LeastConnectionsPicker();
    const key = KEYS[7]!;
    const preferred = picker.pick(list, { ...OPTIONS, affinity: key })!;
    const others = list.filter((backend) => backend !== preferred);

    preferred.active = OPTIONS.maxActive;
    assert.ok(others.includes(picker.pick(list, { ...OPTIONS, affinity: key })!));
    preferred.active = 0;

    assert.ok(
      others.includes(picker.pick(list, { ...OPTIONS, affinity: key, exclude: new Set([preferred]) })!),
    );

    preferred.state = "down";
    assert.ok(others.includes(picker.pick(list, { ...OPTIONS, affinity: key })!));
    preferred.state = "up";
    assert.equal(picker.pick(list, { ...OPTIONS, affinity: key }), preferred);
  });

  it("answers undefined only when no instance has room, as without a key", () => {
    const list = backends(2);
    for (const backend of list) backend.active = OPTIONS.maxActive;
    assert.equal(new LeastConnectionsPicker().pick(list, { ...OPTIONS, affinity: KEYS[0] }), undefined);
  });
});
