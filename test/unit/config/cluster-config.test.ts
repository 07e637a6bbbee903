/** `boxoffice up`'s own settings: a fixed size by default, autoscaling only with both --min and --max. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { loadClusterConfig } from "../../../src/config/cluster-config.js";
import { ConfigError } from "../../../src/domain/errors.js";

describe("cluster config", () => {
  it("starts 3 instances, no autoscaling, with nothing set", () => {
    const config = loadClusterConfig({}, {});
    assert.deepEqual(config, {
      instances: 3,
      instancePortBase: 9101,
      metricsPort: 9180,
      metricsHost: "127.0.0.1",
      logLevel: "info",
      autoscale: null,
    });
    assert.ok(Object.isFrozen(config));
  });

  it("puts the supervisor's metrics on a known port, and takes its log level", () => {
    const config = loadClusterConfig(
      { metricsPort: "0", clusterLogLevel: "warn" },
      { BOXOFFICE_METRICS_HOST: "0.0.0.0" },
    );
    assert.equal(config.metricsPort, 0);
    assert.equal(config.metricsHost, "0.0.0.0");
    assert.equal(config.logLevel, "warn");
    assert.throws(() => loadClusterConfig({ metricsPort: "70000" }, {}), ConfigError);
    assert.throws(() => loadClusterConfig({ clusterLogLevel: "loud" }, {}), ConfigError);
  });

  it("builds the autoscaling policy from --min/--max, the start count kept within them", () => {
    const config = loadClusterConfig(
      { min: "2", max: "5", instances: "9" },
      { BOXOFFICE_TARGET_IN_FLIGHT: "8" },
    );
    assert.equal(config.instances, 5);
    assert.deepEqual(config.autoscale, {
      minInstances: 2,
      maxInstances: 5,
      targetInFlight: 8,
      lowWatermark: 0.25,
      windowMs: 10_000,
      upCooldownMs: 15_000,
      downCooldownMs: 60_000,
    });
    const fromEnv = loadClusterConfig({}, { BOXOFFICE_MIN_INSTANCES: "1", BOXOFFICE_MAX_INSTANCES: "1" });
    assert.equal(fromEnv.autoscale?.maxInstances, 1);
  });

  it("refuses bounds that do not fit, and values out of range, naming them", () => {
    for (const [flags, message] of [
      [{ min: "3", max: "2" }, /--min and --max/],
      [{ max: "4" }, /--min and --max/],
      [{ instances: "0" }, /--instances/],
      [{ min: "1", max: "2", scaleWindowMs: "10" }, /--scale-window-ms/],
    ] as const) {
      assert.throws(
        () => loadClusterConfig(flags, {}),
        (error: unknown) => error instanceof ConfigError && message.test(error.message),
        JSON.stringify(flags),
      );
    }
  });
});
