import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createLockProvider, parseLockSetting } from "../../../src/lock/create-lock-provider.js";

describe("parseLockSetting", () => {
  it("reads every provider", () => {
    assert.deepEqual(parseLockSetting("none"), { kind: "none" });
    assert.deepEqual(parseLockSetting("file"), { kind: "file", path: null });
    assert.deepEqual(parseLockSetting("file:/var/lib/boxoffice/locks.sqlite"), {
      kind: "file",
      path: "/var/lib/boxoffice/locks.sqlite",
    });
    assert.deepEqual(parseLockSetting("postgres"), { kind: "postgres", url: null });
    assert.deepEqual(parseLockSetting("postgresql://u@db:5432/x"), {
      kind: "postgres",
      url: "postgresql://u@db:5432/x",
    });
    assert.deepEqual(parseLockSetting("redis://127.0.0.1:6379"), {
      kind: "redis",
      urls: ["redis://127.0.0.1:6379"],
    });
    assert.deepEqual(parseLockSetting("redis://a:1, redis://b:2,redis://c:3"), {
      kind: "redis",
      urls: ["redis://a:1", "redis://b:2", "redis://c:3"],
    });
  });

  it("refuses what it cannot use, with INVALID_CONFIG", () => {
    for (const bad of [
      "",
      "redlock",
      "file:",
      "redis://a:1,http://b:2",
      "redis://a:1,redis://a:1",
      "mysql://x",
    ]) {
      assert.throws(() => parseLockSetting(bad), { code: "INVALID_CONFIG" }, bad);
    }
  });
});

describe("createLockProvider", () => {
  it("names the kind of each provider", async () => {
    assert.equal((await createLockProvider({ kind: "none" })).kind, "none");
    assert.equal(
      (await createLockProvider({ kind: "file", path: null }, { dataDir: "/tmp/x" })).kind,
      "file",
    );
    assert.equal((await createLockProvider({ kind: "redis", urls: ["redis://a:1"] })).kind, "redis");
    assert.equal(
      (await createLockProvider({ kind: "redis", urls: ["redis://a:1", "redis://b:1", "redis://c:1"] })).kind,
      "redlock",
    );
    assert.equal(
      (await createLockProvider({ kind: "postgres", url: null }, { storeUrl: "postgres://x/y" })).kind,
      "postgres",
    );
  });

  it("needs a place for the file lock and a URL for the postgres lock", async () => {
    await assert.rejects(createLockProvider({ kind: "file", path: null }), { code: "INVALID_CONFIG" });
    await assert.rejects(createLockProvider({ kind: "postgres", url: null }), { code: "INVALID_CONFIG" });
  });

  it("refuses the postgres lock beside a store that is not PostgreSQL, which would ignore it", async () => {
    await assert.rejects(
      createLockProvider({ kind: "postgres", url: "postgres://x/y" }, { storeUrl: null }),
      {
        code: "INVALID_CONFIG",
      },
    );
  });
});
