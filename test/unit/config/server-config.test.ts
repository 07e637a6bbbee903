/** Config: flags win over BOXOFFICE_* variables, which win over defaults; bad values name themselves. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { loadServerConfig } from "../../../src/config/server-config.js";
import { ConfigError } from "../../../src/domain/errors.js";

describe("server config", () => {
  it("uses the defaults with nothing set, and is frozen", () => {
    const config = loadServerConfig({}, {});
    assert.equal(config.port, 8080);
    assert.equal(config.host, "127.0.0.1");
    assert.equal(config.dataDir, path.resolve("./data"));
    assert.equal(config.layout, "per-event");
    assert.equal(config.store, "sqlite");
    assert.deepEqual(config.lock, { kind: "file", path: null });
    assert.equal(config.lockScope, "event");
    assert.equal(config.adminToken, null);
    assert.ok(config.instanceId.length > 0);
    assert.ok(Object.isFrozen(config));
  });

  it("pairs the lock scope with the design unless told: global for the single SQLite file, else event", () => {
    const scope = (flags: Record<string, string>) => loadServerConfig(flags, {}).lockScope;
    assert.equal(scope({ layout: "single" }), "global");
    assert.equal(scope({ layout: "per-event" }), "event");
    assert.equal(scope({ layout: "single", store: "postgres://db/x" }), "event", "the layout is SQLite's");
    assert.equal(scope({ layout: "single", lockScope: "event" }), "event", "an explicit scope wins");
    assert.equal(scope({ layout: "per-event", lockScope: "global" }), "global");
    assert.equal(scope({ layout: "single", lockScope: "auto" }), "global");
    assert.throws(() => scope({ lockScope: "events" }), /lock-scope must be one of auto, event, global/);
  });

  it("reads every BOXOFFICE_* variable, and flags win over them", () => {
    const env = {
      BOXOFFICE_PORT: "9001",
      BOXOFFICE_HOST: "0.0.0.0",
      BOXOFFICE_DATA: "/tmp/x",
      BOXOFFICE_LAYOUT: "single",
      BOXOFFICE_LOCK_SCOPE: "global",
      BOXOFFICE_LOCK_LEASE_MS: "3000",
      BOXOFFICE_LOCK_WAIT_MS: "700",
      BOXOFFICE_INSTANCE_ID: "i-7",
      BOXOFFICE_DURABILITY: "normal",
      BOXOFFICE_ADMIN_TOKEN: "a-long-enough-token",
    };
    const fromEnv = loadServerConfig({}, env);
    assert.deepEqual(
      [fromEnv.port, fromEnv.host, fromEnv.dataDir, fromEnv.layout, fromEnv.lockScope],
      [9001, "0.0.0.0", "/tmp/x", "single", "global"],
    );
    assert.deepEqual(
      [fromEnv.lockLeaseMs, fromEnv.lockWaitMs, fromEnv.instanceId, fromEnv.durability, fromEnv.adminToken],
      [3000, 700, "i-7", "normal", "a-long-enough-token"],
    );
    const flagged = loadServerConfig({ port: "9002", layout: "per-event", instanceId: "flag" }, env);
    assert.deepEqual([flagged.port, flagged.layout, flagged.instanceId], [9002, "per-event", "flag"]);
  });

  it("refuses bad values with a ConfigError that names the flag or variable", () => {
    const cases: [Record<string, string>, Record<string, string>, RegExp][] = [
      [{ port: "70000" }, {}, /--port/],
      [{ port: "8o8o" }, {}, /--port/],
      [{}, { BOXOFFICE_LAYOUT: "sharded" }, /BOXOFFICE_LAYOUT/],
      [{ lock: "zookeeper" }, {}, /--lock/],
      [{ store: "mysql://x" }, {}, /--store/],
      [{ lockWaitMs: "-1" }, {}, /--lock-wait-ms/],
      [{}, { BOXOFFICE_ADMIN_TOKEN: "short" }, /BOXOFFICE_ADMIN_TOKEN/],
      [{ instanceId: "two words" }, {}, /--instance-id/],
      [{}, { BOXOFFICE_INSTANCE_ID: "a\r\nX-Evil: 1" }, /BOXOFFICE_INSTANCE_ID/],
    ];
    for (const [flags, env, message] of cases) {
      assert.throws(
        () => loadServerConfig(flags, env),
        (error: unknown) => {
          assert.ok(error instanceof ConfigError);
          assert.match(error.message, message);
          return true;
        },
      );
    }
  });
});
