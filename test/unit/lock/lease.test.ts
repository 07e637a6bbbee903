/** The shared lease machinery, with a scripted backend: renewal, loss, release, and the bounded wait. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { acquireWithin, holdWhile, type HeldLease } from "../../../src/lock/lease.js";
import { LockUnavailableError } from "../../../src/domain/lock-errors.js";

/** A lease whose renewals answer from a script: "ok", "lost" or "down" (throws). */
function scriptedLease(leaseMs: number, answers: () => "ok" | "lost" | "down") {
  const calls = { extend: 0, release: 0 };
  const lease: HeldLease = {
    fence: 7,
    validUntilMs: performance.now() + leaseMs,
    extend: async () => {
      calls.extend++;
      const answer = answers();
      if (answer === "down") throw new LockUnavailableError("down");
      return answer === "ok" ? performance.now() + leaseMs : null;
    },
    release: async () => {
      calls.release++;
    },
  };
  return { lease, calls };
}

describe("holdWhile", () => {
  it("renews while the work runs, hands it the fence, releases once, and stops renewing after", async () => {
    const { lease, calls } = scriptedLease(60, () => "ok");
    const result = await holdWhile("k", 60, lease, async (guard) => {
      await sleep(200);
      assert.equal(guard.signal.aborted, false);
      return guard.fence;
    });
    assert.equal(result, 7);
    assert.ok(calls.extend >= 2, `renewed ${calls.extend} times`);
    assert.equal(calls.release, 1);
    const renewals = calls.extend;
    await sleep(100);
    assert.equal(calls.extend, renewals, "a renewal timer outlived the work");
  });

  it("aborts the work with LOCK_LOST as soon as a renewal finds the lease gone", async () => {
    const { lease, calls } = scriptedLease(60, () => "lost");
    await assert.rejects(
      holdWhile("k", 60, lease, async (guard) => {
        await once(guard.signal, "abort");
        assert.equal((guard.signal.reason as { code: string }).code, "LOCK_LOST");
        throw new Error("the work noticed");
      }),
      { code: "LOCK_LOST" },
    );
    assert.equal(calls.release, 1);
  });

  it("keeps trying while the backend is down and aborts when the lease runs out", async () => {
    const { lease, calls } = scriptedLease(90, () => "down");
    await assert.rejects(
      holdWhile("k", 90, lease, async (guard) => {
        await once(guard.signal, "abort");
        throw guard.signal.reason;
      }),
      { code: "LOCK_LOST" },
    );
    assert.ok(calls.extend >= 2, `tried ${calls.extend} times`);
  });

  it("rides out a backend blip shorter than the lease", async () => {
    let n = 0;
    const { lease } = scriptedLease(90, () => (n++ === 0 ? "down" : "ok"));
    const aborted = await holdWhile("k", 90, lease, async (guard) => {
      await sleep(250);
      return guard.signal.aborted;
    });
    assert.equal(aborted, false);
  });

  it("returns the work's value when the work finished, even if the lease was lost meanwhile", async () => {
    const { lease } = scriptedLease(30, () => "lost");
    assert.equal(await holdWhile("k", 30, lease, async () => (await sleep(80), "committed")), "committed");
  });
});

describe("acquireWithin", () => {
  it("retries a busy lock until it is free", async () => {
    let tries = 0;
    const { lease } = scriptedLease(1000, () => "ok");
    const got = await acquireWithin("k", 1000, async () => (++tries < 5 ? "busy" : lease));
    assert.equal(got, lease);
    assert.equal(tries, 5);
  });

  it("gives up with LOCK_BUSY when the wait runs out", async () => {
    await assert.rejects(
      acquireWithin("k", 50, async () => "busy"),
      { code: "LOCK_BUSY" },
    );
  });

  it("passes backend failures through at once", async () => {
    let tries = 0;
    await assert.rejects(
      acquireWithin("k", 1000, async () => {
        tries++;
        throw new LockUnavailableError("down");
      }),
      { code: "LOCK_UNAVAILABLE" },
    );
    assert.equal(tries, 1);
  });
});
