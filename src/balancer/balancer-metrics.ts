/**
 * `/_lb/metrics`: the balancer's figures in Prometheus text format, in a registry of its own (never
 * prom-client's global one, so that two balancers in one process do not mix). The two figures every
 * request touches (its instance's request count and response time) are plain numbers in the instance's
 * series, turned into prom-client's series when scraped: a prom-client observation validates and hashes
 * its labels each time, which on the balancer's hot path cost more than the counting itself.
 */
import {
  Counter,
  Gauge,
  Histogram,
  Registry,
  collectDefaultMetrics,
  type MetricObjectWithValues,
  type MetricType,
  type MetricValueWithName,
} from "prom-client";
import type { Backend } from "./backend.js";

export type RejectReason = "queue_full" | "queue_timeout" | "no_backend";

const LATENCY_NAME = "boxoffice_lb_backend_response_seconds";
const LATENCY_HELP = "Time from sending a request to an instance until its response ended";
const LATENCY_BUCKETS_S = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

/** Response times of one instance: a count per bucket (the last one past every bound), a sum. */
export class LatencySeries {
  readonly counts = new Float64Array(LATENCY_BUCKETS_S.length + 1);
  sum = 0;
  count = 0;

  observe(seconds: number): void {
    let index = 0;
    while (index < LATENCY_BUCKETS_S.length && seconds > LATENCY_BUCKETS_S[index]!) index++;
    this.counts[index]!++;
    this.sum += seconds;
    this.count++;
  }
}

/** The per-instance series, bound to one instance's label. */
export interface BackendSeries {
  /** Requests sent (a plain count, exported at scrape time). */
  requests: number;
  latency: LatencySeries;
  retries: Counter.Internal;
  ejections: Counter.Internal;
  failures: Counter.Internal;
}

/** The response-time histogram, exported from the instances' LatencySeries when scraped. */
class LatencyHistogram extends Histogram<"backend"> {
  readonly #series: ReadonlyMap<string, BackendSeries>;

  constructor(series: ReadonlyMap<string, BackendSeries>, registers: Registry[]) {
    super({
      name: LATENCY_NAME,
      help: LATENCY_HELP,
      labelNames: ["backend"],
      buckets: LATENCY_BUCKETS_S,
      registers,
    });
    this.#series = series;
  }

  /** What prom-client's registry formats (it prefers this method to `get` when there is one). */
  async getForPromString(): Promise<MetricObjectWithValues<MetricValueWithName<"backend">>> {
    const values: MetricValueWithName<"backend">[] = [];
    const bucketName = `${LATENCY_NAME}_bucket`;
    for (const [backend, { latency }] of this.#series) {
      let cumulative = 0;
      LATENCY_BUCKETS_S.forEach((bound, index) => {
        cumulative += latency.counts[index]!;
        values.push({
          metricName: bucketName,
          labels: { backend, le: bound } as Partial<Record<"backend", string | number>>,
          value: cumulative,
        });
      });
      values.push(
        {
          metricName: bucketName,
          labels: { backend, le: "+Inf" } as Partial<Record<"backend", string | number>>,
          value: latency.count,
        },
        { metricName: `${LATENCY_NAME}_sum`, labels: { backend }, value: latency.sum },
        { metricName: `${LATENCY_NAME}_count`, labels: { backend }, value: latency.count },
      );
    }
    return {
      name: LATENCY_NAME,
      help: LATENCY_HELP,
      // prom-client's types declare MetricType a numeric enum; at run time the type is this string.
      type: "histogram" as unknown as MetricType,
      aggregator: "sum",
      values,
      collect: () => undefined,
    };
  }
}

export class BalancerMetrics {
  readonly registry = new Registry();
  /** Every instance's series, kept after it leaves (like prom-client's own children). */
  readonly #series = new Map<string, BackendSeries>();
  readonly #retries: Counter;
  readonly #ejections: Counter;
  readonly #failures: Counter;
  readonly #rejected: Counter;
  readonly #clientErrors: Counter;

  constructor(backends: () => readonly Backend[], queueLength: () => number) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "boxoffice_lb_" });
    const series = this.#series;
    new Counter({
      name: "boxoffice_lb_backend_requests_total",
      help: "Requests (or TCP connections) sent to an instance, retries included",
      labelNames: ["backend"],
      registers,
      collect() {
        this.reset();
        for (const [backend, { requests }] of series) this.inc({ backend }, requests);
      },
    });
    this.#retries = new Counter({
      name: "boxoffice_lb_backend_retries_total",
      help: "Requests that failed on an instance and were sent again to another",
      labelNames: ["backend"],
      registers,
    });
    this.#ejections = new Counter({
      name: "boxoffice_lb_backend_ejections_total",
      help: "Times an instance was taken out of rotation (passive ejection or failed health checks)",
      labelNames: ["backend"],
      registers,
    });
    this.#failures = new Counter({
      name: "boxoffice_lb_backend_failures_total",
      help: "Requests that failed on an instance (500/502/504 or a broken connection)",
      labelNames: ["backend"],
      registers,
    });
    new LatencyHistogram(series, registers);
    this.#rejected = new Counter({
      name: "boxoffice_lb_rejected_total",
      help: "Requests answered 503 by the balancer itself, by reason",
      labelNames: ["reason"],
      registers,
    });
    this.#clientErrors = new Counter({
      name: "boxoffice_lb_client_errors_total",
      help: "Client connections turned away: malformed HTTP, oversized headers, too slow",
      labelNames: ["kind"],
      registers,
    });
    new Gauge({
      name: "boxoffice_lb_backend_active",
      help: "In-flight requests (or open TCP connections) per instance",
      labelNames: ["backend"],
      registers,
      collect() {
        this.reset();
        for (const backend of backends()) this.set({ backend: backend.id }, backend.active);
      },
    });
    new Gauge({
      name: "boxoffice_lb_backend_up",
      help: "1 while an instance takes traffic, 0 when down or draining",
      labelNames: ["backend"],
      registers,
      collect() {
        this.reset();
        for (const backend of backends()) this.set({ backend: backend.id }, backend.state === "up" ? 1 : 0);
      },
    });
    new Gauge({
      name: "boxoffice_lb_queue_length",
      help: "Requests waiting for an instance with room",
      registers,
      collect() {
        this.set(queueLength());
      },
    });
  }

  seriesFor(backendId: string): BackendSeries {
    let series = this.#series.get(backendId);
    if (series === undefined) {
      series = {
        requests: 0,
        latency: new LatencySeries(),
        retries: this.#retries.labels(backendId),
        ejections: this.#ejections.labels(backendId),
        failures: this.#failures.labels(backendId),
      };
      this.#series.set(backendId, series);
    }
    return series;
  }

  /** Counts the access log's lines written and dropped (a disk slower than the traffic). */
  watchAccessLog(log: { readonly written: number; readonly dropped: number }): void {
    new Counter({
      name: "boxoffice_lb_access_log_lines_total",
      help: "Access log lines, by outcome: written (handed to the file) or dropped (too many waiting)",
      labelNames: ["outcome"],
      registers: [this.registry],
      collect() {
        this.reset();
        this.inc({ outcome: "written" }, log.written);
        this.inc({ outcome: "dropped" }, log.dropped);
      },
    });
  }

  rejected(reason: RejectReason): void {
    this.#rejected.inc({ reason });
  }

  clientError(kind: string): void {
    this.#clientErrors.inc({ kind });
  }

  text(): Promise<string> {
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }
}
