/** The balancer's settings: one table, the same rules as every command's, and docs/balancer.md agrees. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  BALANCER_SETTINGS,
  balancerConfigWarnings,
  loadBalancerConfig,
  parseBackendSpec,
} from "../../../src/config/balancer-config.js";
import { ConfigError } from "../../../src/domain/errors.js";

describe("loadBalancerConfig", () => {
  it("uses the defaults with nothing set", () => {
    const config = loadBalancerConfig({}, {});
    assert.equal(config.port, 8080);
    assert.equal(config.host, "127.0.0.1");
    assert.deepEqual(config.backends, []);
    assert.equal(config.adminToken, undefined);
    assert.equal(config.mode, "http");
    assert.equal(config.upstreamClient, "raw");
    assert.equal(config.front, "raw");
    assert.equal(config.healthPath, "/ready");
    assert.equal(config.retryBudgetRatio, 0.2);
    assert.equal(config.listenBacklog, 4096);
    assert.ok(Object.isFrozen(config));
    assert.ok(Object.isFrozen(config.backends));
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
    // Keyed as commander hands them over: the camelCased flag, a repeated flag as an array.
    const flagged = loadBalancerConfig(
      { port: "9001", backend: ["http://localhost:9200", "http://localhost:9201"], healthIntervalMs: "250" },
      env,
    );
    assert.equal(flagged.port, 9001);
    assert.deepEqual(flagged.backends, [
      { url: "http://localhost:9200", weight: 1 },
      { url: "http://localhost:9201", weight: 1 },
    ]);
    assert.equal(flagged.healthIntervalMs, 250);
  });

  it("reads DNS discovery, the admin port, the log level and the access log", () => {
    const config = loadBalancerConfig(
      { backendsDns: "boxoffice.default.svc.cluster.local:8080", dnsServer: "[::1]:5353" },
      {
        BOXOFFICE_LB_ADMIN_PORT: "9901",
        BOXOFFICE_LB_LOG_LEVEL: "warn",
        BOXOFFICE_LB_ACCESS_LOG: "stdout",
        BOXOFFICE_LB_ACCESS_LOG_SAMPLE: "0.25",
      },
    );
    assert.deepEqual(config.backendsDns, { name: "boxoffice.default.svc.cluster.local", port: 8080 });
    assert.deepEqual(config.dnsServer, { host: "::1", port: 5353 });
    assert.equal(config.adminPort, 9901);
    assert.equal(config.logLevel, "warn");
    assert.equal(config.accessLog, "stdout");
    assert.equal(config.accessLogSample, 0.25);
    assert.deepEqual(loadBalancerConfig({ dnsServer: "10.0.0.10" }, {}).dnsServer, {
      host: "10.0.0.10",
      port: 53,
    });
    const none = loadBalancerConfig({}, {});
    assert.equal(none.backendsDns, undefined);
    assert.equal(none.adminPort, undefined);
    assert.equal(none.accessLog, undefined);
    assert.equal(none.logLevel, "info");
    for (const bad of ["no-port", "a b:80", "host:0", "host:65536", "-bad-.example:80", ":80"])
      assert.throws(() => loadBalancerConfig({ backendsDns: bad }, {}), ConfigError, bad);
    for (const bad of ["dns.example:53", "1.2.3.4:x", "[nope]:53"])
      assert.throws(() => loadBalancerConfig({ dnsServer: bad }, {}), ConfigError, bad);
    for (const bad of ["-0.1", "1.5", "half"])
      assert.throws(() => loadBalancerConfig({ accessLogSample: bad }, {}), ConfigError, bad);
    assert.throws(() => loadBalancerConfig({ logLevel: "loud" }, {}), ConfigError);
    assert.throws(() => loadBalancerConfig({ accessLogQuery: "maybe" }, {}), ConfigError);
  });

  it("names every numeric option --<kebab-case> and BOXOFFICE_LB_<SNAKE_CASE>", () => {
    const kebab = (name: string) => name.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
    let numeric = 0;
    for (const [key, setting] of Object.entries(BALANCER_SETTINGS)) {
      if (setting.valueName !== "n") continue;
      numeric++;
      assert.equal(setting.flag, kebab(key), key);
      assert.equal(setting.env, `BOXOFFICE_LB_${kebab(key).replace(/-/g, "_").toUpperCase()}`, key);
    }
    assert.equal(numeric, 28);
    assert.equal(BALANCER_SETTINGS.queueTimeoutMs.env, "BOXOFFICE_LB_QUEUE_TIMEOUT_MS");
  });

  it("keeps every minimum, and allows fractions where they mean something", () => {
    const minimums: [string, number][] = [
      ["healthIntervalMs", 10],
      ["maxHeaderBytes", 1024],
      ["maxQueue", 0],
      ["slowStartMs", 0],
      ["maxActivePerBackend", 1],
    ];
    for (const [key, minimum] of minimums) {
      assert.equal(loadBalancerConfig({ [key]: String(minimum) }, {})[key as "maxQueue"], minimum, key);
      assert.throws(() => loadBalancerConfig({ [key]: String(minimum - 1) }, {}), ConfigError, key);
    }
    assert.equal(loadBalancerConfig({ retryBudgetRatio: "0.05" }, {}).retryBudgetRatio, 0.05);
  });

  it("refuses bad values with one ConfigError (INVALID_CONFIG) naming the flag or variable", () => {
    const bad: [Record<string, string | string[]>, Record<string, string>, RegExp][] = [
      [{ port: "70000" }, {}, /--port/],
      [{}, { BOXOFFICE_PORT: "http" }, /BOXOFFICE_PORT/],
      [{ queueTimeoutMs: "soon" }, {}, /--queue-timeout-ms/],
      [{}, { BOXOFFICE_LB_MAX_QUEUE: "-1" }, /BOXOFFICE_LB_MAX_QUEUE/],
      [{ maxActivePerBackend: "0" }, {}, /--max-active-per-backend/],
      [{ mode: "udp" }, {}, /--mode/],
      [{ front: "nginx" }, {}, /--front/],
      [{ healthPath: "ready" }, {}, /--health-path/],
      [{ backend: ["ftp://x:1"] }, {}, /http/],
      [{ backend: ["http://x:1/path"] }, {}, /origin/],
      [{ backend: ["http://x:1", "http://x:1"] }, {}, /twice/],
      [{ backend: ["http://x:1#weight=0"] }, {}, /weight/],
    ];
    for (const [flags, env, message] of bad) {
      assert.throws(
        () => loadBalancerConfig(flags, env),
        (error: unknown) =>
          error instanceof ConfigError && error.code === "INVALID_CONFIG" && message.test(error.message),
        JSON.stringify([flags, env]),
      );
    }
  });

  it("parses a backend's weight from its fragment", () => {
    assert.deepEqual(parseBackendSpec("http://127.0.0.1:9101/#weight=7"), {
      url: "http://127.0.0.1:9101",
      weight: 7,
    });
  });

  it("warns of an upstream keep-alive that the instances may cut first", () => {
    assert.deepEqual(balancerConfigWarnings(loadBalancerConfig({}, {})), []);
    const long = loadBalancerConfig({ upstreamKeepAliveMs: "5000" }, {});
    assert.match(balancerConfigWarnings(long).join("\n"), /keep-alive/);
  });
});

describe("docs/balancer.md's options table", () => {
  it("lists every option with the flag, variable and default of the table, in its order", () => {
    const rows = readFileSync("docs/balancer.md", "utf8")
      .split("\n")
      .filter((line) => /^\| `--/.test(line))
      .map((line) => line.split("|").map((cell) => cell.trim()));
    const documented = rows.map(([, flag = "", env = "", defaultText = ""]) => ({
      flag: /`--([a-z-]+)/.exec(flag)?.[1],
      env: /`([A-Z_]+)`/.exec(env)?.[1],
      defaultText,
    }));
    const inCode = Object.values(BALANCER_SETTINGS).map((setting) => ({
      flag: setting.flag,
      env: setting.env,
      defaultText: setting.defaultText === "" ? "none" : setting.defaultText,
    }));
    assert.deepEqual(documented, inCode);
  });
});
