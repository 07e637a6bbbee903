import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { newEventId } from "../../../../src/domain/ids.js";
import { lockKeyFor } from "../../../../src/lock/lock-provider.js";
import { lockErrorFromPostgres } from "../../../../src/lock/postgres/postgres-lock.js";
import { advisoryKeyFor } from "../../../../src/postgres/advisory-key.js";

describe("advisoryKeyFor", () => {
  it("is stable, a signed 64-bit integer, and apart for 200,000 events", () => {
    assert.equal(advisoryKeyFor("event:evt_1"), advisoryKeyFor("event:evt_1"));
    const seen = new Set<bigint>([advisoryKeyFor(lockKeyFor("global", "any"))]);
    for (let i = 0; i < 200_000; i++) {
      const key = advisoryKeyFor(lockKeyFor("event", newEventId()));
      assert.ok(key >= -(2n ** 63n) && key < 2n ** 63n);
      seen.add(key);
    }
    assert.equal(seen.size, 200_001);
  });
});

describe("lockErrorFromPostgres", () => {
  it("maps lock_timeout (55P03) to LOCK_BUSY and leaves every other error alone", () => {
    const busy = lockErrorFromPostgres({ code: "55P03", message: "canceling statement" }, "event:e", 250);
    assert.equal(busy?.code, "LOCK_BUSY");
    assert.equal(busy?.retryable, true);
    assert.equal(lockErrorFromPostgres({ code: "40001" }, "event:e", 250), null);
    assert.equal(lockErrorFromPostgres(new Error("boom"), "event:e", 250), null);
    assert.equal(lockErrorFromPostgres(null, "event:e", 250), null);
  });
});
