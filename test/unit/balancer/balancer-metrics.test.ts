import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { BalancerMetrics } from "../../../src/balancer/balancer-metrics.js";

describe("BalancerMetrics", () => {
  it("exports the per-instance request counts and response-time histogram kept as plain numbers", async () => {
    const metrics = new BalancerMetrics(
      () => [],
      () => 0,
    );
    const series = metrics.seriesFor("b0");
    assert.equal(metrics.seriesFor("b0"), series, "one series per instance");
    series.requests += 3;
    for (const seconds of [0.0005, 0.003, 0.003, 20]) series.latency.observe(seconds);
    const text = await metrics.text();
    const line = (prefix: string) => text.split("\n").find((candidate) => candidate.startsWith(prefix));
    assert.equal(
      line('boxoffice_lb_backend_requests_total{backend="b0"}'),
      'boxoffice_lb_backend_requests_total{backend="b0"} 3',
    );
    const bucket = (le: string) =>
      line(`boxoffice_lb_backend_response_seconds_bucket{backend="b0",le="${le}"}`)?.split(" ")[1];
    assert.equal(bucket("0.001"), "1");
    assert.equal(bucket("0.0025"), "1");
    assert.equal(bucket("0.005"), "3");
    assert.equal(bucket("10"), "3");
    assert.equal(bucket("+Inf"), "4");
    assert.equal(
      line('boxoffice_lb_backend_response_seconds_count{backend="b0"}'),
      'boxoffice_lb_backend_response_seconds_count{backend="b0"} 4',
    );
    assert.equal(
      line('boxoffice_lb_backend_response_seconds_sum{backend="b0"}'),
      'boxoffice_lb_backend_response_seconds_sum{backend="b0"} 20.0065',
    );
    assert.match(text, /# TYPE boxoffice_lb_backend_response_seconds histogram/);
  });
});
