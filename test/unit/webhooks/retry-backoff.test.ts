/** Backoff with full jitter: every wait within [0, min(max, base · 2^(n-1))), the ceiling doubling. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { retryCeilingMs, retryDelayMs } from "../../../src/webhooks/retry-backoff.js";

describe("webhook retry backoff", () => {
  it("stays within 0 and the ceiling, whatever the random draw", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 10, max: 3_600_000 }),
        fc.integer({ min: 100, max: 86_400_000 }),
        fc.integer({ min: 1, max: 10_000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (baseMs, maxMs, attempt, draw) => {
          const policy = { baseMs, maxMs };
          const delay = retryDelayMs(policy, attempt, () => draw);
          const ceiling = retryCeilingMs(policy, attempt);
          assert.ok(Number.isInteger(delay) && delay >= 0 && delay < Math.max(ceiling, 1));
          assert.ok(ceiling <= maxMs);
          assert.ok(ceiling <= baseMs * 2 ** (attempt - 1));
        },
      ),
    );
  });

  it("doubles the ceiling per attempt up to the cap", () => {
    const policy = { baseMs: 5000, maxMs: 3_600_000 };
    assert.deepEqual(
      [1, 2, 3, 4, 10, 11, 1000].map((n) => retryCeilingMs(policy, n)),
      [5000, 10_000, 20_000, 40_000, 2_560_000, 3_600_000, 3_600_000],
    );
  });

  it("is full jitter: the draw spans the whole range", () => {
    const policy = { baseMs: 1000, maxMs: 60_000 };
    assert.equal(
      retryDelayMs(policy, 3, () => 0),
      0,
    );
    assert.equal(
      retryDelayMs(policy, 3, () => 0.999999),
      3999,
    );
  });

  it("retries for at least 24 hours with the defaults before the window closes", () => {
    // The longest the first n attempts can take is the sum of their ceilings; the window is a separate
    // clock, so a delivery that keeps failing is tried until it is 24 h old, at most an hour apart.
    const policy = { baseMs: 5000, maxMs: 3_600_000 };
    let total = 0;
    let attempts = 0;
    while (total < 24 * 3_600_000) total += retryCeilingMs(policy, ++attempts);
    assert.ok(attempts >= 30, `at least ${attempts} attempts fit in the day with the longest waits`);
  });
});
