/**
 * `/_lb/metrics`: the balancer's figures in Prometheus text format, in a registry of its own (never
 * prom-client's global one, so that two balancers in one process do not mix). Per-instance children are
 * made once per instance, so the hot path does not hash label sets.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { Backend } from "./backend.js";

export type RejectReason = "queue_full" | "queue_timeout" | "no_backend";

/** The per-instance series, bound to one instance's label. */
export interface BackendSeries {
  requests: Counter.Internal;
  retries: Counter.Internal;
  ejections: Counter.Internal;
  failures: Counter.Internal;
  latency: Histogram.Internal<string>;
}

export class BalancerMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter;
  readonly #retries: Counter;
  readonly #ejections: Counter;
  readonly #failures: Counter;
  readonly #latency: Histogram;
  readonly #rejected: Counter;
  readonly #clientErrors: Counter;

  constructor(backends: () => readonly Backend[], queueLength: () => number) {
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry, prefix: "boxoffice_lb_" });
    this.#requests = new Counter({
      name: "boxoffice_lb_backend_requests_total",
      help: "Requests (or TCP connections) sent to an instance, retries included",
      labelNames: ["backend"],
      registers,
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
    this.#latency = new Histogram({
      name: "boxoffice_lb_backend_response_seconds",
      help: "Time from sending a request to an instance until its response ended",
      labelNames: ["backend"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    });
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
    return {
      requests: this.#requests.labels(backendId),
      retries: this.#retries.labels(backendId),
      ejections: this.#ejections.labels(backendId),
      failures: this.#failures.labels(backendId),
      latency: this.#latency.labels(backendId),
    };
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
