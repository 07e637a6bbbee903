import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  BalancerConfigError,
  envNameOf,
  loadBalancerConfig,
  parseBackendSpec,
} from "../../../src/config/balancer-config.js";

describe("loadBalancerConfig", () => {
  it("uses the defaults with nothing set", () => {
    const config = loadBalancerConfig({}, {});
    assert.equal(config.port, 8080);
    assert.equal(config.host, "127.0.0.1");
    assert.deepEqual(config.backends, []);
    assert.equal(config.adminToken, undefined);
    assert.equal(config.mode, "http");
    assert.ok(Object.isFrozen(config));
  });

  it("reads the environment, and flags win over it", () => {
    const env = {
      BOXOFFICE_PORT: "9000",
      BOXOFFICE_BACKENDS: "http://127.0.0.1:9101, http://127.0.0.1:9102#weight=3",
      BOXOFFICE_ADMIN_TOKEN: "secret",
      BOXOFFICE_LB_HEALTH_INTERVAL_MS: "500",
    };
    const fromEnv = loadBalancerConfig({}, env);
    assert.equal(fromEnv.port, 9000);
    assert.deepEqual(fromEnv.backends, [
      { url: "http://127.0.0.1:9101", weight: 1 },
      { url: "http://127.0.0.1:9102", weight: 3 },
    ]);
    assert.equal(fromEnv.adminToken, "secret");
    assert.equal(fromEnv.healthIntervalMs, 500);
    const flagged = loadBalancerConfig(
      { port: "9001", backends: ["http://localhost:9200"], healthIntervalMs: "250" },
      env,
    );
    assert.equal(flagged.port, 9001);
    assert.deepEqual(flagged.backends, [{ url: "http://localhost:9200", weight: 1 }]);
    assert.equal(flagged.healthIntervalMs, 250);
  });

  it("names every numeric option's variable BOXOFFICE_LB_<SNAKE_CASE>", () => {
    assert.equal(envNameOf("queueTimeoutMs"), "BOXOFFICE_LB_QUEUE_TIMEOUT_MS");
  });

  it("refuses bad values with INVALID_CONFIG", () => {
    const bad: [Record<string, string | string[]>, RegExp][] = [
      [{ port: "70000" }, /port/],
      [{ queueTimeoutMs: "soon" }, /queueTimeoutMs/],
      [{ maxActivePerBackend: "0" }, /maxActivePerBackend/],
      [{ mode: "udp" }, /mode/],
      [{ backends: ["ftp://x:1"] }, /http/],
      [{ backends: ["http://x:1/path"] }, /origin/],
      [{ backends: ["http://x:1", "http://x:1"] }, /twice/],
      [{ backends: ["http://x:1#weight=0"] }, /weight/],
    ];
    for (const [flags, message] of bad) {
      assert.throws(
        () => loadBalancerConfig(flags, {}),
        (error: unknown) =>
          error instanceof BalancerConfigError &&
          error.code === "INVALID_CONFIG" &&
          message.test(error.message),
        JSON.stringify(flags),
      );
    }
  });

  it("parses a backend's weight from its fragment", () => {
    assert.deepEqual(parseBackendSpec("http://127.0.0.1:9101/#weight=7"), {
      url: "http://127.0.0.1:9101",
      weight: 7,
    });
  });
});
