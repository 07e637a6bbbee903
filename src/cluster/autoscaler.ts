/**
 * When to add or remove an instance, decided from samples of the balancer's in-flight counts. Pure: no
 * timers, no I/O, so the policy can be tested on its own; the supervisor feeds it samples and acts.
 *
 * Scale up when the in-flight requests per instance stayed above `targetInFlight` over the window (by
 * the median of its samples); scale down when they stayed below `targetInFlight * lowWatermark`. After any
 * change, wait `cooldownMs` before the next, so a new instance gets to take load before being judged.
 */
import type { AutoscalePolicy } from "../config/cluster-config.js";

export interface LoadSample {
  atMs: number;
  /** In-flight requests (including queued ones) across all instances that take traffic. */
  inFlight: number;
  /** Instances that take traffic. */
  instances: number;
}

export type ScaleDecision =
  { action: "none"; reason: string } | { action: "up" | "down"; from: number; to: number; reason: string };

export class Autoscaler {
  readonly policy: AutoscalePolicy;
  #samples: LoadSample[] = [];
  #lastChangeMs = -Infinity;
  #lastDirection: "up" | "down" | null = null;

  constructor(policy: AutoscalePolicy) {
    if (policy.minInstances < 1 || policy.maxInstances < policy.minInstances) {
      throw new RangeError("need 1 <= minInstances <= maxInstances");
    }
    this.policy = policy;
  }

  /** Records a sample and says what to do now. */
  observe(sample: LoadSample): ScaleDecision {
    const { policy } = this;
    this.#samples.push(sample);
    const windowStart = sample.atMs - policy.windowMs;
    while ((this.#samples[0]?.atMs ?? Infinity) < windowStart) this.#samples.shift();

    const count = sample.instances;
    const oldest = this.#samples[0];
    if (!oldest || sample.atMs - oldest.atMs < policy.windowMs * 0.9) {
      return { action: "none", reason: "not enough samples for a full window yet" };
    }
    // The median of the window, not every sample: one quiet instant in a burst (or one spike in a quiet
    // spell) must not decide, and neither must a single extreme sample.
    const perInstance = this.#samples.map((s) => s.inFlight / Math.max(1, s.instances)).sort((a, b) => a - b);
    const median = perInstance[Math.floor(perInstance.length / 2)] ?? 0;
    const highForWindow = median > policy.targetInFlight;
    const lowForWindow = median < policy.targetInFlight * policy.lowWatermark;
    const label = `median ${median.toFixed(1)} in flight per instance over ${policy.windowMs} ms`;

    if (highForWindow && count < policy.maxInstances) {
      if (sample.atMs - this.#lastChangeMs < this.#cooldown("up"))
        return { action: "none", reason: `${label}; cooling down` };
      return this.#change("up", count, count + 1, sample.atMs, `${label} > target ${policy.targetInFlight}`);
    }
    if (lowForWindow && count > policy.minInstances) {
      if (sample.atMs - this.#lastChangeMs < this.#cooldown("down"))
        return { action: "none", reason: `${label}; cooling down` };
      return this.#change(
        "down",
        count,
        count - 1,
        sample.atMs,
        `${label} < ${policy.targetInFlight * policy.lowWatermark}`,
      );
    }
    return { action: "none", reason: label };
  }

  #cooldown(direction: "up" | "down"): number {
    // Reversing direction waits the longer of the two, so the cluster does not flap.
    const own = direction === "up" ? this.policy.upCooldownMs : this.policy.downCooldownMs;
    return this.#lastDirection !== null && this.#lastDirection !== direction
      ? Math.max(this.policy.upCooldownMs, this.policy.downCooldownMs)
      : own;
  }

  #change(action: "up" | "down", from: number, to: number, atMs: number, reason: string): ScaleDecision {
    this.#lastChangeMs = atMs;
    this.#lastDirection = action;
    // Samples from before the change describe another cluster; start a new window.
    this.#samples = [];
    return { action, from, to, reason };
  }
}
