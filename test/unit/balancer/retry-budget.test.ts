import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { RetryBudget } from "../../../src/balancer/retry-budget.js";

describe("RetryBudget", () => {
  it("allows the floor per second, then a share of the requests", () => {
    const budget = new RetryBudget(0.25, 3);
    const now = 1_000_000;
    let allowed = 0;
    for (let i = 0; i < 10; i++) if (budget.tryRetry(now)) allowed++;
    assert.equal(allowed, 3);
    for (let i = 0; i < 40; i++) budget.recordRequest();
    allowed = 0;
    for (let i = 0; i < 20; i++) if (budget.tryRetry(now + 10)) allowed++;
    assert.equal(allowed, 10);
    assert.equal(budget.tryRetry(now + 1500), true);
  });

  it("with a zero floor and ratio, never retries", () => {
    const budget = new RetryBudget(0, 0);
    budget.recordRequest();
    assert.equal(budget.tryRetry(), false);
  });
});
