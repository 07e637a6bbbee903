/**
 * The dashboard's scale and drain, refused by the supervisor itself (whatever the HTTP layer checked):
 * a count outside 1..256, or outside the autoscaling bounds, and an instance it does not run. Nothing is
 * started: the refusals come before any process would be.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { pino } from "pino";
import type { AutoscalePolicy } from "../../../src/config/cluster-config.js";
import { ClusterActionError, Supervisor } from "../../../src/cluster/supervisor.js";

function supervisor(autoscale: AutoscalePolicy | null): Supervisor {
  return new Supervisor({
    cliPath: "/nonexistent/cli.js",
    host: "127.0.0.1",
    port: 1,
    instancePortBase: 2,
    instances: 2,
    autoscale,
    serverArgs: [],
    balancerArgs: [],
    env: {},
    adminToken: "actions-test-token-0123456789",
    logDir: "/nonexistent",
    log: pino({ level: "silent" }),
  });
}

function refusedWith(code: string): (error: unknown) => boolean {
  return (error) => error instanceof ClusterActionError && error.code === code;
}

describe("supervisor actions", () => {
  it("refuses a count that is not a whole number from 1 to 256", () => {
    const fixed = supervisor(null);
    for (const count of [0, -1, 1.5, 257, Number.NaN, Infinity]) {
      assert.throws(() => fixed.scaleTo(count), refusedWith("invalid_request"), String(count));
    }
  });

  it("refuses a count outside the autoscaling bounds", () => {
    const scaled = supervisor({
      minInstances: 2,
      maxInstances: 4,
      targetInFlight: 32,
      lowWatermark: 0.3,
      windowMs: 10_000,
      upCooldownMs: 5_000,
      downCooldownMs: 30_000,
    });
    for (const count of [1, 5]) {
      assert.throws(
        () => scaled.scaleTo(count),
        (error: unknown) => {
          assert.ok(refusedWith("invalid_request")(error));
          assert.match((error as Error).message, /from 2 to 4 \(the autoscaling bounds\)/);
          return true;
        },
      );
    }
  });

  it("refuses to drain an instance it does not run", () => {
    assert.throws(() => supervisor(null).drainInstance("i-1"), refusedWith("instance_not_found"));
  });
});
