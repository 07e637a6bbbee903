/**
 * The live figures of one instance for the dashboard, from two scrapes of its `/metrics` (Prometheus
 * text): requests and tickets sold per second, the p99 response time, lock waits per second and their
 * p99, over the time between the two scrapes. Pure: the supervisor scrapes, this computes.
 */

/** What one scrape of an instance's `/metrics` keeps: counters and histograms summed over their labels. */
export interface MetricsSample {
  atMs: number;
  requests: number;
  /** Cumulative bucket counts of boxoffice_http_request_duration_seconds, by upper bound in seconds. */
  durationBuckets: Map<number, number>;
  ticketsSold: number;
  /** Cumulative bucket counts of boxoffice_lock_wait_seconds, by upper bound in seconds. */
  lockWaitBuckets: Map<number, number>;
  sellQueueDepth: number;
}

export interface InstanceFigures {
  requestsPerSecond: number | null;
  /** The 99th percentile response time over the window, in ms; null when nothing was answered. */
  p99Ms: number | null;
  ticketsPerSecond: number | null;
  lockWaitsPerSecond: number | null;
  lockWaitP99Ms: number | null;
  sellQueueDepth: number | null;
}

export const NO_FIGURES: InstanceFigures = {
  requestsPerSecond: null,
  p99Ms: null,
  ticketsPerSecond: null,
  lockWaitsPerSecond: null,
  lockWaitP99Ms: null,
  sellQueueDepth: null,
};

/** A series line: its name, its labels' text (inside the braces) and its value. */
const LINE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[^"}]|"(?:[^"\\]|\\.)*")*)\})?\s+(\S+)/;
const LE = /(?:^|,)le="([^"]*)"/;

/** Reads the series the dashboard needs from an instance's Prometheus text. */
export function parseMetrics(text: string, atMs: number): MetricsSample {
  const sample: MetricsSample = {
    atMs,
    requests: 0,
    durationBuckets: new Map(),
    ticketsSold: 0,
    lockWaitBuckets: new Map(),
    sellQueueDepth: 0,
  };
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const match = LINE.exec(line);
    if (!match) continue;
    const [, name, labels = "", valueText] = match;
    const value = Number(valueText);
    if (!Number.isFinite(value) && valueText !== "+Inf") continue;
    switch (name) {
      case "boxoffice_http_requests_total":
        sample.requests += value;
        break;
      case "boxoffice_tickets_sold_total":
        sample.ticketsSold += value;
        break;
      case "boxoffice_sell_queue_depth":
        sample.sellQueueDepth += value;
        break;
      case "boxoffice_http_request_duration_seconds_bucket":
        addBucket(sample.durationBuckets, labels, value);
        break;
      case "boxoffice_lock_wait_seconds_bucket":
        addBucket(sample.lockWaitBuckets, labels, value);
        break;
    }
  }
  return sample;
}

function addBucket(buckets: Map<number, number>, labels: string, value: number): void {
  const le = LE.exec(labels)?.[1];
  if (le === undefined) return;
  const bound = le === "+Inf" ? Infinity : Number(le);
  if (Number.isNaN(bound)) return;
  buckets.set(bound, (buckets.get(bound) ?? 0) + value);
}

/**
 * The `quantile` of the observations made between two cumulative histograms, interpolated linearly
 * inside its bucket as Prometheus's histogram_quantile does; in the +Inf bucket, the largest finite
 * bound. Null when nothing was observed (or a counter went back: the instance restarted).
 */
export function quantileBetween(
  before: Map<number, number>,
  after: Map<number, number>,
  quantile: number,
): number | null {
  const bounds = [...after.keys()].sort((a, b) => a - b);
  const counts = bounds.map((bound) => (after.get(bound) ?? 0) - (before.get(bound) ?? 0));
  if (counts.some((count) => count < 0)) return null;
  const total = counts.at(-1) ?? 0;
  if (total <= 0) return null;
  const rank = quantile * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (let index = 0; index < bounds.length; index++) {
    const bound = bounds[index]!;
    const count = counts[index]!;
    if (count >= rank) {
      if (bound === Infinity) return lowerBound;
      if (count === lowerCount) return bound;
      return lowerBound + ((bound - lowerBound) * (rank - lowerCount)) / (count - lowerCount);
    }
    lowerBound = bound;
    lowerCount = count;
  }
  return lowerBound;
}

/** Per-second rate of a counter between two samples; null when it went back or no time passed. */
function rate(before: number, after: number, seconds: number): number | null {
  if (seconds <= 0 || after < before) return null;
  return (after - before) / seconds;
}

function milliseconds(seconds: number | null): number | null {
  return seconds === null ? null : seconds * 1000;
}

/** The figures over the window between two samples of one process (`before` may be absent: no rates). */
export function figuresBetween(before: MetricsSample | undefined, after: MetricsSample): InstanceFigures {
  if (!before) return { ...NO_FIGURES, sellQueueDepth: after.sellQueueDepth };
  const seconds = (after.atMs - before.atMs) / 1000;
  const lockWaits = (buckets: Map<number, number>) => buckets.get(Infinity) ?? 0;
  return {
    requestsPerSecond: rate(before.requests, after.requests, seconds),
    p99Ms: milliseconds(quantileBetween(before.durationBuckets, after.durationBuckets, 0.99)),
    ticketsPerSecond: rate(before.ticketsSold, after.ticketsSold, seconds),
    lockWaitsPerSecond: rate(lockWaits(before.lockWaitBuckets), lockWaits(after.lockWaitBuckets), seconds),
    lockWaitP99Ms: milliseconds(quantileBetween(before.lockWaitBuckets, after.lockWaitBuckets, 0.99)),
    sellQueueDepth: after.sellQueueDepth,
  };
}
