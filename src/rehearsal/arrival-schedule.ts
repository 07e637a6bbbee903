/**
 * When buyers arrive. An on-sale is an open system: buyers come when they come, whatever the answers
 * the ones before them are getting, so a slow boxoffice faces a growing crowd instead of a politely
 * waiting one (a closed loop of N workers would hide exactly the overload a rehearsal is for, the
 * "coordinated omission" of load testers). The rate climbs linearly from 0 to `ratePerSecond` over
 * `rampSeconds`, then stays; arrivals stop at `durationSeconds` or after `maxBuyers`.
 */
import type { Random } from "./random.js";

export interface ArrivalPlan {
  /** Buyers per second once the ramp is over. */
  ratePerSecond: number;
  /** Seconds over which the rate climbs from 0 to `ratePerSecond`; 0 starts at full rate. */
  rampSeconds: number;
  /** Seconds during which buyers arrive, the ramp included. */
  durationSeconds: number;
  /** Stop after this many buyers even before the duration ends; 0: no limit. */
  maxBuyers: number;
  /** `poisson`: random gaps (independent buyers); `uniform`: evenly spaced. */
  kind: "poisson" | "uniform";
}

/**
 * The time (seconds from the start) by which `expected` buyers are expected to have arrived: the
 * inverse of the cumulative rate Λ(t) = rate·t²/(2·ramp) during the ramp, then rate·(ramp/2 + t − ramp).
 */
export function timeOfExpectedArrivals(plan: ArrivalPlan, expected: number): number {
  const rate = plan.ratePerSecond;
  const ramp = plan.rampSeconds;
  const duringRamp = (rate * ramp) / 2;
  if (ramp > 0 && expected < duringRamp) return Math.sqrt((2 * expected * ramp) / rate);
  return ramp + (expected - duringRamp) / rate;
}

/**
 * The arrival times, in milliseconds from the start, in order. Poisson arrivals are a unit-rate Poisson
 * process mapped through the ramp (exponential gaps in "expected arrivals", then time); uniform ones
 * put the k-th buyer where k buyers are expected.
 */
export function* arrivalTimesMs(plan: ArrivalPlan, random: Random): Generator<number> {
  let expected = 0;
  for (let count = 0; plan.maxBuyers === 0 || count < plan.maxBuyers; count++) {
    expected += plan.kind === "uniform" ? 1 : -Math.log(1 - random());
    const seconds = timeOfExpectedArrivals(plan, expected);
    if (seconds >= plan.durationSeconds) return;
    yield seconds * 1000;
  }
}

/** Time as the launcher sees it; tests give it a clock of their own. */
export interface Clock {
  nowMs(): number;
  /** Resolves at `atMs` (at once if that is past), or early when `signal` aborts. */
  sleepUntil(atMs: number, signal?: AbortSignal): Promise<void>;
}

export const systemClock: Clock = {
  nowMs: () => performance.timeOrigin + performance.now(),
  sleepUntil: (atMs, signal) =>
    new Promise<void>((resolve) => {
      const waitMs = atMs - systemClock.nowMs();
      if (waitMs <= 0 || signal?.aborted) return resolve();
      const done = () => {
        clearTimeout(timer);
        signal?.removeEventListener("abort", done);
        resolve();
      };
      const timer = setTimeout(done, waitMs);
      signal?.addEventListener("abort", done, { once: true });
    }),
};

/** One arrival as it happened: when it was due and when it was let in (both epoch ms). */
export interface Arrival {
  index: number;
  scheduledAtMs: number;
  startedAtMs: number;
}

/**
 * Starts a buyer at each arrival time and never waits for one: `arrive` must return at once (it starts
 * the buyer's work and hands back its promise, which this function only collects). When the process
 * falls behind (a busy event loop), overdue arrivals are let in at once, each keeping its due time, so
 * the lateness shows in the report instead of silently thinning the crowd. Resolves, when the last
 * arrival has been let in (or `signal` aborted), with every buyer's promise.
 */
export async function launchArrivals(
  timesMs: Iterable<number>,
  startMs: number,
  arrive: (arrival: Arrival) => Promise<void>,
  clock: Clock = systemClock,
  signal?: AbortSignal,
): Promise<Promise<void>[]> {
  const buyers: Promise<void>[] = [];
  let index = 0;
  for (const offsetMs of timesMs) {
    if (signal?.aborted) break;
    const scheduledAtMs = startMs + offsetMs;
    if (clock.nowMs() < scheduledAtMs) await clock.sleepUntil(scheduledAtMs, signal);
    if (signal?.aborted) break;
    buyers.push(arrive({ index: index++, scheduledAtMs, startedAtMs: clock.nowMs() }));
  }
  return buyers;
}
