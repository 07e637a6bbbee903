/**
 * The dashboard's per-instance figures from two scrapes of an instance's real /metrics text (written by
 * the instance's own ServerMetrics): rates over the window, the p99 interpolated inside its bucket as
 * Prometheus does, and no figure (never a negative or made-up one) when a counter went back because the
 * instance restarted.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { figuresBetween, parseMetrics, quantileBetween } from "../../../src/cluster/instance-figures.js";
import { ServerMetrics } from "../../../src/server/server-metrics.js";

function observeRequests(metrics: ServerMetrics, seconds: number, count: number): void {
  for (let i = 0; i < count; i++) {
    metrics.httpRequests.inc({ method: "POST", route: "/v1/events/:eventId/orders", status: "201" });
    metrics.httpDuration.observe({ method: "POST", route: "/v1/events/:eventId/orders" }, seconds);
  }
}

describe("instance figures", () => {
  it("computes rates and p99 over the window between two scrapes", async () => {
    const metrics = new ServerMetrics("i-1", { defaultMetrics: false });
    observeRequests(metrics, 0.003, 50);
    metrics.ticketsSold.inc(10);
    const before = parseMetrics(await metrics.registry.metrics(), 1_000);
    // In the window: 100 requests, 98 fast (in the 1–2.5 ms bucket), 2 slow (in the 250–500 ms one).
    observeRequests(metrics, 0.002, 98);
    observeRequests(metrics, 0.3, 2);
    metrics.ticketsSold.inc(40);
    metrics.lockWait.observe(0.004);
    metrics.lockWait.observe(0.004);
    metrics.queueDepth.set(5);
    const after = parseMetrics(await metrics.registry.metrics(), 3_000);
    const figures = figuresBetween(before, after);
    assert.equal(figures.requestsPerSecond, 50);
    assert.equal(figures.ticketsPerSecond, 20);
    assert.equal(figures.lockWaitsPerSecond, 1);
    assert.equal(figures.sellQueueDepth, 5);
    // Rank 99 of 100: the 1st of the 2 in the (250, 500] ms bucket, 98 below it: 250 + 250 * 1/2.
    assert.ok(Math.abs(figures.p99Ms! - 375) < 1e-9, String(figures.p99Ms));
    // Both lock waits in the (2.5, 5] ms bucket: rank 1.98 of 2 lies 99% of the way through it.
    assert.ok(Math.abs(figures.lockWaitP99Ms! - (2.5 + 2.5 * 0.99)) < 1e-9, String(figures.lockWaitP99Ms));
  });

  it("gives no rates for a first scrape, an idle window, or a counter that went back", async () => {
    const metrics = new ServerMetrics("i-1", { defaultMetrics: false });
    observeRequests(metrics, 0.01, 20);
    const first = parseMetrics(await metrics.registry.metrics(), 1_000);
    assert.equal(figuresBetween(undefined, first).requestsPerSecond, null);
    const idle = figuresBetween(first, parseMetrics(await metrics.registry.metrics(), 2_000));
    assert.equal(idle.requestsPerSecond, 0);
    assert.equal(idle.p99Ms, null);
    const restarted = new ServerMetrics("i-1", { defaultMetrics: false });
    observeRequests(restarted, 0.01, 5);
    const reset = figuresBetween(first, parseMetrics(await restarted.registry.metrics(), 2_000));
    assert.equal(reset.requestsPerSecond, null);
    assert.equal(reset.p99Ms, null);
  });

  it("puts a quantile past every bound at the largest finite bound", () => {
    const before = new Map<number, number>([
      [0.1, 0],
      [Infinity, 0],
    ]);
    const after = new Map<number, number>([
      [0.1, 1],
      [Infinity, 10],
    ]);
    assert.equal(quantileBetween(before, after, 0.99), 0.1);
    assert.equal(quantileBetween(before, before, 0.99), null);
  });
});
