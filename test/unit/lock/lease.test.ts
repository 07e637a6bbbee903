/** The shared lease machinery, with a scripted backend: renewal, loss, release, and the bounded wait. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import {
  acquireWithin,
  holdManyWhile,
  holdWhile,
  type HeldLease,
  type HeldLeases,
} from "../../../src/lock/lease.js";
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

  it("tries again as soon as the key is released instead of sleeping out its backoff", async () => {
    let free = false;
    let tries = 0;
    const listeners = new Set<() => void>();
    const { lease } = scriptedLease(1000, () => "ok");
    const attempt = async () => {
      tries++;
      if (!free) setTimeout(() => ((free = true), listeners.forEach((listener) => listener())), 20);
      return free ? lease : ("busy" as const);
    };
    // A ten-minute backoff: only the notification can bring the second try before the test ends.
    const got = await acquireWithin("k", 3_600_000, attempt, performance.now(), {
      firstRetryMs: 600_000,
      maxRetryMs: 600_000,
      onReleased: (key, listener) => {
        assert.equal(key, "k");
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
    });
    assert.equal(got, lease);
    assert.equal(tries, 2, "one busy try, then one try right after the release");
    assert.equal(listeners.size, 0, "unsubscribed once granted");
  });

  it("does not sleep when the release was heard while its try was on its way", async () => {
    let tries = 0;
    let notify = (): void => {};
    const { lease } = scriptedLease(1000, () => "ok");
    const got = await acquireWithin(
      "k",
      3_600_000,
      async () => {
        if (++tries > 1) return lease;
        notify();
        return "busy";
      },
      performance.now(),
      {
        firstRetryMs: 600_000,
        maxRetryMs: 600_000,
        onReleased: (_key, listener) => ((notify = listener), () => undefined),
      },
    );
    assert.equal(got, lease);
    assert.equal(tries, 2);
  });

  it("still takes the lock by its backoff when no notification comes", async () => {
    let tries = 0;
    const { lease } = scriptedLease(1000, () => "ok");
    const got = await acquireWithin(
      "k",
      60_000,
      async () => (++tries < 4 ? "busy" : lease),
      performance.now(),
      {
        onReleased: () => () => undefined,
      },
    );
    assert.equal(got, lease);
    assert.equal(tries, 4);
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

/** Leases on keys a, b, c whose renewals answer per key from a script: "ok", "lost" or "unsure". */
function scriptedLeases(leaseMs: number, answers: (key: string) => "ok" | "lost" | "unsure" | "down") {
  const calls = { extend: [] as string[][], release: [] as string[][] };
  const leases: HeldLeases = {
    fences: new Map([
      ["a", 1],
      ["b", 2],
      ["c", 3],
    ]),
    validUntilMs: performance.now() + leaseMs,
    extend: async (keys) => {
      calls.extend.push([...keys]);
      if (keys.some((key) => answers(key) === "down")) throw new LockUnavailableError("down");
      return {
        validUntilMs: performance.now() + leaseMs,
        renewed: keys.filter((key) => answers(key) === "ok"),
        lost: keys.filter((key) => answers(key) === "lost"),
      };
    },
    release: async (keys) => {
      calls.release.push([...keys]);
    },
  };
  return { leases, calls };
}

describe("holdManyWhile", () => {
  it("renews every key in one call, aborts only the key found lost, and releases all in one call", async () => {
    const { leases, calls } = scriptedLeases(60, (key) => (key === "b" ? "lost" : "ok"));
    const refused = new Map([["d", new Error("busy")]]);
    const result = await holdManyWhile(60, leases, refused, async (granted, refusedKeys) => {
      assert.equal(refusedKeys, refused);
      assert.deepEqual(
        [...granted].map(([key, guard]) => [key, guard.lockKey, guard.fence]),
        [
          ["a", "a", 1],
          ["b", "b", 2],
          ["c", "c", 3],
        ],
      );
      await once(granted.get("b")!.signal, "abort");
      assert.equal((granted.get("b")!.signal.reason as { code: string }).code, "LOCK_LOST");
      await sleep(200);
      assert.equal(granted.get("a")!.signal.aborted, false);
      assert.equal(granted.get("c")!.signal.aborted, false);
      return "done";
    });
    assert.equal(result, "done");
    assert.deepEqual(calls.extend[0], ["a", "b", "c"]);
    assert.ok(calls.extend.length >= 3);
    assert.ok(
      calls.extend.slice(1).every((keys) => keys.join() === "a,c"),
      "the lost key is not renewed again",
    );
    assert.deepEqual(calls.release, [["a", "b", "c"]]);
  });

  it("aborts a key that no renewal confirms when its own lease runs out, and all when the backend is down", async () => {
    const { leases } = scriptedLeases(90, (key) => (key === "c" ? "unsure" : "ok"));
    await holdManyWhile(90, leases, new Map(), async (granted) => {
      await once(granted.get("c")!.signal, "abort");
      assert.equal(granted.get("a")!.signal.aborted, false);
    });
    const down = scriptedLeases(90, () => "down");
    await holdManyWhile(90, down.leases, new Map(), async (granted) => {
      await Promise.all([...granted.values()].map((guard) => once(guard.signal, "abort")));
    });
    assert.ok(down.calls.extend.length >= 2, "kept trying while the backend was down");
    assert.equal(down.calls.release.length, 1);
  });

  it("runs the work with no timers when nothing was granted", async () => {
    const { calls } = scriptedLeases(60, () => "ok");
    const none: HeldLeases = {
      fences: new Map(),
      validUntilMs: 0,
      extend: async () => assert.fail("nothing to renew"),
      release: async () => assert.fail("nothing to release"),
    };
    assert.equal(await holdManyWhile(60, none, new Map(), async (granted) => granted.size), 0);
    assert.equal(calls.extend.length, 0);
  });
});
