/**
 * The HTTP/1.1 least-connections load balancer: one process with one view of every instance's in-flight
 * requests, keep-alive pools to each instance (its own client, or undici's), one bounded admission
 * queue and safe retries. This file is the placement; the server side clients talk to is the front
 * (create-front.ts), the `/_lb/` endpoints are admin-api.ts, a body is read by request-body.ts.
 * `init()` starts listening; `close()` stops cleanly.
 */
import type { AddressInfo } from "node:net";
import type { BalancerConfig } from "../config/balancer-config.js";
import type { Logger } from "../log/logger.js";
import type { Tracing } from "../telemetry/tracing.js";
import { RequestIdGenerator } from "../http/request-id.js";
import { AccessLog } from "./access-log.js";
import { AdminApi } from "./admin-api.js";
import { AdmissionQueue, type QueueTicket } from "./admission-queue.js";
import type { Backend } from "./backend.js";
import { BackendRegistry } from "./backend-registry.js";
import { BalancerMetrics, type RejectReason } from "./balancer-metrics.js";
import { sendProblem } from "./balancer-errors.js";
import { createFront } from "./create-front.js";
import { DnsDiscovery } from "./dns-discovery.js";
import type { Front, FrontRequest, FrontResponse } from "./front.js";
import { LeastConnectionsPicker } from "./least-connections-picker.js";
import { listen } from "./listen.js";
import {
  ProxyExchange,
  refuseUnproxiable,
  type AttemptOutcome,
  type ExchangeHost,
} from "./proxy-exchange.js";
import type { Termination } from "./access-log.js";
import { readBody } from "./request-body.js";
import { RetryBudget } from "./retry-budget.js";

/** The requests `--placement event` keeps together: an event's and everything under it. */
const EVENTS_PREFIX = "/v1/events/";

export class LeastConnectionsBalancer implements ExchangeHost {
  readonly #config: Readonly<BalancerConfig>;
  readonly metrics: BalancerMetrics;
  readonly registry: BackendRegistry;
  readonly #picker = new LeastConnectionsPicker();
  readonly #queue: AdmissionQueue<ProxyExchange>;
  readonly #budget: RetryBudget;
  readonly #front: Front;
  /** The `/_lb/` listener of its own (`--admin-port`); without it, `/_lb/` is on the public front. */
  readonly #adminFront: Front | undefined;
  readonly #admin: AdminApi;
  readonly accessLog: AccessLog | undefined;
  readonly requestIds = new RequestIdGenerator();
  readonly #discovery: DnsDiscovery | undefined;
  #serveQueueScheduled = false;
  #initialized = false;
  #closing: Promise<void> | undefined;

  /** A span per proxied request (`--otel-endpoint`); closed with the balancer. */
  readonly tracing: Tracing | undefined;

  constructor(config: Readonly<BalancerConfig>, log: Logger, tracing?: Tracing) {
    this.#config = config;
    this.tracing = tracing;
    this.#queue = new AdmissionQueue(config.maxQueue, config.queueTimeoutMs);
    this.#budget = new RetryBudget(config.retryBudgetRatio, config.retryBudgetMinPerSecond);
    this.metrics = new BalancerMetrics(
      () => this.registry.list,
      () => this.#queue.length,
    );
    this.registry = new BackendRegistry(
      config,
      this.metrics,
      {
        client: config.upstreamClient,
        connections: config.maxActivePerBackend,
        keepAliveMs: config.upstreamKeepAliveMs,
        connectTimeoutMs: config.connectTimeoutMs,
        headersTimeoutMs: config.upstreamHeadersTimeoutMs,
        bodyTimeoutMs: config.upstreamBodyTimeoutMs,
      },
      () => this.#scheduleServeQueue(),
      log,
    );
    this.#admin = new AdminApi({
      registry: this.registry,
      metrics: this.metrics,
      adminToken: config.adminToken,
      retryAfterSeconds: config.retryAfterSeconds,
      log,
      clusterUrl: config.clusterUrl,
    });
    this.accessLog =
      config.accessLog === undefined
        ? undefined
        : new AccessLog({
            destination: config.accessLog,
            sampleRatio: config.accessLogSample,
            keepQuery: config.accessLogQuery === "keep",
            maxBufferedBytes: config.accessLogBufferBytes,
          });
    if (this.accessLog !== undefined) this.metrics.watchAccessLog(this.accessLog);
    this.#discovery =
      config.backendsDns === undefined
        ? undefined
        : new DnsDiscovery(config.backendsDns, config.dnsServer, config.dnsIntervalMs, this.registry, log);
    const onClientError = (kind: string) => this.metrics.clientError(kind);
    if (config.adminPort === undefined) {
      this.#adminFront = undefined;
      this.#front = createFront(config, {
        onRequest: (req, res) => {
          if (!this.#admin.tryHandle(req, res)) this.#onRequest(req, res);
        },
        onClientError,
      });
    } else {
      // `/_lb/` is answered on the admin port only; on the public one it is an unknown path.
      this.#adminFront = createFront(config, {
        onRequest: (req, res) => {
          if (!this.#admin.tryHandle(req, res)) sendProblem(res, 404, "not_found", "no such endpoint");
        },
        onClientError,
      });
      this.#front = createFront(config, {
        onRequest: (req, res) => {
          if (AdminApi.isAdminPath(req)) sendProblem(res, 404, "not_found", "no such endpoint");
          else this.#onRequest(req, res);
        },
        onClientError,
      });
    }
  }

  get maxRetries(): number {
    return this.#config.maxRetries;
  }
  get upstreamBodyTimeoutMs(): number {
    return this.#config.upstreamBodyTimeoutMs;
  }
  get clientSendTimeoutMs(): number {
    return this.#config.clientSendTimeoutMs;
  }
  get sseMaxAgeMs(): number {
    return this.#config.sseMaxAgeMs;
  }
  get retryAfterSeconds(): number {
    return this.#config.retryAfterSeconds;
  }

  /** The port listened on (after `init()`). */
  get port(): number {
    return (this.#front.server.address() as AddressInfo).port;
  }

  /** The admin port listened on (after `init()`), when `--admin-port` was given. */
  get adminPort(): number | undefined {
    return this.#adminFront && (this.#adminFront.server.address() as AddressInfo).port;
  }

  async init(): Promise<void> {
    if (this.#initialized) return;
    this.#initialized = true;
    this.registry.init();
    // The first DNS answer before listening, so that the first requests find its instances (once their
    // health checks pass).
    await this.#discovery?.init();
    if (this.#adminFront !== undefined)
      await listen(this.#adminFront.server, this.#config.adminPort!, this.#config.adminHost, 511);
    await listen(this.#front.server, this.#config.port, this.#config.host, this.#config.listenBacklog);
  }

  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then frees everything. */
  close(graceMs = 5000): Promise<void> {
    this.#closing ??= this.#close(graceMs);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    this.#discovery?.close();
    const fronts = this.#adminFront === undefined ? [this.#front] : [this.#front, this.#adminFront];
    const closed = fronts.map(
      (front) =>
        new Promise<void>((resolve) => {
          if (!front.server.listening) resolve();
          else front.server.close(() => resolve());
        }),
    );
    for (const front of fronts) front.closeIdleConnections();
    this.#queue.drainAll((exchange) =>
      exchange.reject(503, "unavailable", "the balancer is shutting down", "KQ"),
    );
    const timer = setTimeout(() => {
      for (const front of fronts) front.closeAllConnections();
    }, graceMs);
    await Promise.all(closed);
    clearTimeout(timer);
    await this.registry.close();
    await this.accessLog?.close();
    await this.tracing?.close();
  }

  retrying(backend: Backend): void {
    this.registry.recordRetry(backend);
  }

  tryRetry(): boolean {
    return this.#budget.tryRetry();
  }

  #onRequest(req: FrontRequest, res: FrontResponse): void {
    if (refuseUnproxiable(req, res)) return;
    this.#budget.recordRequest();
    if (req.completeBody !== undefined) {
      this.place(new ProxyExchange(this, req, res, req.completeBody));
      return;
    }
    const contentLength = req.headers["content-length"];
    if (
      req.headers["transfer-encoding"] === undefined &&
      (contentLength === undefined || contentLength === "0")
    ) {
      this.place(new ProxyExchange(this, req, res, contentLength === "0" ? Buffer.alloc(0) : null));
      return;
    }
    readBody(req, this.#config.maxBufferedBodyBytes).then(
      (body) => {
        if (!res.destroyed) this.place(new ProxyExchange(this, req, res, body));
      },
      () => res.destroy(),
    );
  }

  /** Sends the exchange to the least-loaded instance with room, or queues it, or answers 503. */
  place(exchange: ProxyExchange): void {
    if (exchange.finished) return exchange.leftUnplaced();
    if (this.registry.upCount === 0) return this.#reject(exchange, "no_backend", "no instance is up", "RC");
    // Serve the queue first: a newcomer must not overtake requests that are already waiting.
    const backend =
      this.#queue.length === 0
        ? this.#picker.pick(this.registry.list, this.#pickOptions(exchange.tried, this.#affinityOf(exchange)))
        : undefined;
    if (backend !== undefined) return this.#dispatch(exchange, backend);
    const ticket: QueueTicket<ProxyExchange> | undefined = this.#queue.enqueue(exchange, (timedOut) =>
      this.#reject(
        timedOut,
        "queue_timeout",
        `no instance had room within ${this.#config.queueTimeoutMs} ms`,
        "sQ",
      ),
    );
    if (ticket === undefined)
      return this.#reject(exchange, "queue_full", "every instance is busy and the queue is full", "RQ");
    exchange.cancelQueued = () => this.#queue.cancel(ticket);
  }

  attemptEnded(_exchange: ProxyExchange, backend: Backend, outcome: AttemptOutcome): void {
    const series = this.registry.series(backend);
    switch (outcome.kind) {
      case "ok":
        series?.latency.observe(outcome.durationMs / 1000);
        this.registry.recordSuccess(backend);
        break;
      case "failed":
        this.registry.recordFailure(backend, false);
        break;
      case "unreachable":
        this.registry.recordFailure(backend, true);
        break;
      case "neutral":
        break;
    }
    this.registry.release(backend);
  }

  #pickOptions(exclude: ReadonlySet<Backend> | undefined, affinity?: string) {
    return {
      nowMs: Date.now(),
      slowStartMs: this.#config.slowStartMs,
      maxActive: this.#config.maxActivePerBackend,
      exclude,
      affinity,
    };
  }

  /**
   * `--placement event`: the event id a request names (`/v1/events/<id>`, then the end, `/`, `?` or
   * `#`), as its affinity key; undefined otherwise (least connections). Only a key: an id that is not an
   * event's routes like any other text, and the instance answers it.
   */
  #affinityOf(exchange: ProxyExchange): string | undefined {
    if (this.#config.placement !== "event") return undefined;
    const url = exchange.req.url;
    if (url === undefined || !url.startsWith(EVENTS_PREFIX)) return undefined;
    let end = EVENTS_PREFIX.length;
    while (end < url.length) {
      const char = url.charCodeAt(end);
      if (char === 0x2f || char === 0x3f || char === 0x23) break; // "/", "?", "#"
      end++;
    }
    return end > EVENTS_PREFIX.length ? url.slice(EVENTS_PREFIX.length, end) : undefined;
  }

  #dispatch(exchange: ProxyExchange, backend: Backend): void {
    this.registry.acquire(backend);
    exchange.dispatchTo(backend);
  }

  #reject(exchange: ProxyExchange, reason: RejectReason, detail: string, termination: Termination): void {
    this.metrics.rejected(reason);
    exchange.reject(503, "unavailable", detail, termination);
  }

  // Deferred to a microtask: a slot frees inside the client's callbacks, and dispatching from there again
  // would re-enter the client; one pass also serves several freed slots at once.
  #scheduleServeQueue(): void {
    if (this.#serveQueueScheduled || this.#queue.length === 0) return;
    this.#serveQueueScheduled = true;
    queueMicrotask(() => {
      this.#serveQueueScheduled = false;
      this.#serveQueue();
    });
  }

  #serveQueue(): void {
    while (this.#queue.length > 0) {
      if (this.#picker.pick(this.registry.list, this.#pickOptions(undefined)) === undefined) return;
      const exchange = this.#queue.shift()!;
      exchange.cancelQueued = undefined;
      if (exchange.finished) continue;
      const backend = this.#picker.pick(this.registry.list, this.#pickOptions(exchange.tried))!;
      this.#dispatch(exchange, backend);
    }
  }
}
