import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { Autoscaler } from "../../../src/cluster/autoscaler.js";
import type { AutoscalePolicy } from "../../../src/config/cluster-config.js";

const policy: AutoscalePolicy = {
  minInstances: 2,
  maxInstances: 4,
  targetInFlight: 10,
  lowWatermark: 0.3,
  windowMs: 3000,
  upCooldownMs: 5000,
  downCooldownMs: 10000,
};

/** Feeds one sample a second with `perInstance` in flight on `instances`, returns the decisions taken. */
function feed(scaler: Autoscaler, fromS: number, toS: number, perInstance: number, instances: { n: number }) {
  const actions: string[] = [];
  for (let s = fromS; s <= toS; s++) {
    const decision = scaler.observe({
      atMs: s * 1000,
      inFlight: perInstance * instances.n,
      instances: instances.n,
    });
    if (decision.action !== "none") {
      actions.push(`${s}:${decision.action}:${decision.to}`);
      instances.n = decision.to;
    }
  }
  return actions;
}

describe("autoscaler", () => {
  it("adds an instance only after load stayed above the target for the whole window", () => {
    const scaler = new Autoscaler(policy);
    const n = { n: 2 };
    assert.deepEqual(feed(scaler, 0, 2, 50, n), [], "two seconds of load is not a window");
    assert.deepEqual(feed(scaler, 3, 3, 50, n), ["3:up:3"]);
  });

  it("ignores a short spike", () => {
    const scaler = new Autoscaler(policy);
    const n = { n: 2 };
    feed(scaler, 0, 1, 1, n);
    feed(scaler, 2, 2, 100, n);
    assert.deepEqual(feed(scaler, 3, 6, 5, n), []);
  });

  it("scales up to the maximum under steady overload, waiting out each cooldown, and no further", () => {
    const scaler = new Autoscaler(policy);
    const n = { n: 2 };
    assert.deepEqual(feed(scaler, 0, 60, 50, n), ["3:up:3", "8:up:4"]);
    assert.equal(n.n, 4);
  });

  it("scales down to the minimum when quiet, never below it", () => {
    const scaler = new Autoscaler(policy);
    const n = { n: 4 };
    assert.deepEqual(feed(scaler, 0, 60, 0, n), ["3:down:3", "13:down:2"]);
  });

  it("holds steady between the watermarks", () => {
    const scaler = new Autoscaler(policy);
    const n = { n: 3 };
    assert.deepEqual(feed(scaler, 0, 60, 6, n), []);
  });

  it("waits the longer cooldown before reversing direction", () => {
    const scaler = new Autoscaler(policy);
    const n = { n: 2 };
    assert.deepEqual(feed(scaler, 0, 3, 50, n), ["3:up:3"]);
    // Quiet right after scaling up: the reversal waits for max(up, down) cooldown = 10 s, not 5 s.
    assert.deepEqual(feed(scaler, 4, 20, 0, n), ["13:down:2"]);
  });

  it("rejects a policy whose minimum is above its maximum", () => {
    assert.throws(() => new Autoscaler({ ...policy, minInstances: 5 }), RangeError);
  });
});
