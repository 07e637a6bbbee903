/**
 * The set of instances and everything that changes their state: adding, removing, draining, weights,
 * passive ejection on failed requests, and the active health checks that take an instance down or
 * bring it back. Shared by the HTTP and the TCP balancer.
 */
import { Client } from "undici";
import type { BalancerConfig, BackendSpec } from "../config/balancer-config.js";
import { BoxofficeError } from "../domain/errors.js";
import type { Logger } from "../log/logger.js";
import { Backend, type BackendPoolOptions } from "./backend.js";
import type { BackendSeries, BalancerMetrics } from "./balancer-metrics.js";

export class BackendNotFoundError extends BoxofficeError {
  constructor(id: string) {
    super("BACKEND_NOT_FOUND", `no backend "${id}"`);
  }
}

export class BackendExistsError extends BoxofficeError {
  constructor(url: string) {
    super("BACKEND_EXISTS", `backend ${url} is already listed`);
  }
}

interface Entry {
  backend: Backend;
  series: BackendSeries;
  /** A connection of its own for health checks, so a full pool cannot make a check time out. */
  healthClient: Client;
  checking: boolean;
  /** Added by DNS discovery (dns-discovery.ts), which alone may drain it when its address goes. */
  discovered: boolean;
}

export class BackendRegistry {
  readonly #config: Readonly<BalancerConfig>;
  readonly #metrics: BalancerMetrics;
  readonly #poolOptions: BackendPoolOptions | undefined;
  readonly #onCapacity: () => void;
  readonly #log: Logger;
  readonly #entries = new Map<Backend, Entry>();
  #list: Backend[] = [];
  #nextId = 1;
  #healthTimer: NodeJS.Timeout | undefined;
  #closed = false;

  /**
   * @param poolOptions keep-alive pool settings (HTTP mode); `undefined` in TCP mode.
   * @param onCapacity called whenever an instance may have room again, to serve the queue.
   */
  constructor(
    config: Readonly<BalancerConfig>,
    metrics: BalancerMetrics,
    poolOptions: BackendPoolOptions | undefined,
    onCapacity: () => void,
    log: Logger,
  ) {
    this.#config = config;
    this.#metrics = metrics;
    this.#poolOptions = poolOptions;
    this.#onCapacity = onCapacity;
    this.#log = log;
  }

  /** Every instance, in the order added (the picker's array; do not change it). */
  get list(): readonly Backend[] {
    return this.#list;
  }

  get upCount(): number {
    let count = 0;
    for (const backend of this.#list) if (backend.state === "up") count++;
    return count;
  }

  /** Adds the configured instances (all at full weight: they start together) and starts the health checks. */
  init(): void {
    for (const spec of this.#config.backends) this.add(spec, false);
    this.#healthTimer = setInterval(() => this.#checkAll(), this.#config.healthIntervalMs);
    this.#healthTimer.unref();
    this.#checkAll();
  }

  /**
   * An instance whose address DNS now gives: it starts down and takes requests only once its health
   * checks have passed `riseCount` times (then with slow start). An address already listed (by
   * `--backend`, the admin API, or still draining after it went away) is left as it is, except that a
   * discovered one still draining is taken back (down until its checks pass).
   */
  addDiscovered(url: string): void {
    const existing = this.#list.find((backend) => backend.url === url);
    if (existing !== undefined) {
      const entry = this.#entries.get(existing);
      if (entry?.discovered && existing.state === "draining") {
        existing.state = "down";
        existing.healthPasses = 0;
        existing.healthFailures = 0;
        this.#checkOne(entry);
      }
      return;
    }
    const backend = this.add({ url, weight: 1 }, true);
    backend.state = "down";
    const entry = this.#entries.get(backend)!;
    entry.discovered = true;
    this.#log.info(`${backend.id} (${url}) found by DNS; up once its health checks pass`);
    this.#checkOne(entry);
  }

  /** An address DNS no longer gives: its instance, if discovery added it, is drained and then leaves. */
  drainDiscovered(url: string): void {
    const backend = this.#list.find((candidate) => candidate.url === url);
    if (backend === undefined || !this.#entries.get(backend)?.discovered) return;
    if (backend.state === "draining") return;
    this.#log.info(`${backend.id} (${url}) no longer in DNS; draining`);
    this.drain(backend.id);
  }

  /** Adds an instance; `slowStart` for one added at run time (not at boot, when all start together). */
  add(spec: BackendSpec, slowStart: boolean): Backend {
    if (this.#list.some((backend) => backend.url === spec.url)) throw new BackendExistsError(spec.url);
    const id = `b${this.#nextId++}`;
    const backend = new Backend(
      id,
      spec.url,
      spec.weight,
      this.#poolOptions,
      slowStart ? Date.now() : undefined,
    );
    const healthClient = new Client(spec.url, {
      connectTimeout: this.#config.healthTimeoutMs,
      headersTimeout: this.#config.healthTimeoutMs,
      bodyTimeout: this.#config.healthTimeoutMs,
      keepAliveTimeout: this.#config.upstreamKeepAliveMs,
      keepAliveMaxTimeout: this.#config.upstreamKeepAliveMs,
    });
    this.#entries.set(backend, {
      backend,
      series: this.#metrics.seriesFor(id),
      healthClient,
      checking: false,
      discovered: false,
    });
    this.#list = [...this.#list, backend];
    this.#onCapacity();
    return backend;
  }

  get(id: string): Backend {
    const backend = this.#list.find((candidate) => candidate.id === id);
    if (!backend) throw new BackendNotFoundError(id);
    return backend;
  }

  /** The instance's metric series; `undefined` once it was removed. */
  series(backend: Backend): BackendSeries | undefined {
    return this.#entries.get(backend)?.series;
  }

  setWeight(id: string, weight: number): Backend {
    const backend = this.get(id);
    backend.weight = weight;
    this.#onCapacity();
    return backend;
  }

  /** No new requests; the instance leaves once its in-flight requests have finished. */
  drain(id: string): Backend {
    const backend = this.get(id);
    backend.state = "draining";
    if (backend.active === 0) this.#remove(backend);
    return backend;
  }

  /** Takes the instance out at once; its in-flight requests still finish. */
  remove(id: string): void {
    this.#remove(this.get(id));
  }

  /** One request (or connection) placed on the instance. */
  acquire(backend: Backend): void {
    backend.active++;
    backend.requests++;
    const entry = this.#entries.get(backend);
    if (entry !== undefined) entry.series.requests++;
  }

  /** One request (or connection) on the instance finished, however it ended. */
  release(backend: Backend): void {
    backend.active--;
    if (backend.state === "draining" && backend.active === 0) this.#remove(backend);
    this.#onCapacity();
  }

  /** The instance answered well: its run of failures is over. */
  recordSuccess(backend: Backend): void {
    backend.consecutiveFailures = 0;
  }

  /**
   * The instance failed a request. `unreachable` (connection refused, reset before the request was
   * sent) ejects it at once; other failures eject it after `passiveFailureCount` in a row.
   */
  recordFailure(backend: Backend, unreachable: boolean): void {
    backend.failures++;
    backend.consecutiveFailures++;
    this.#entries.get(backend)?.series.failures.inc();
    if (unreachable || backend.consecutiveFailures >= this.#config.passiveFailureCount)
      this.#markDown(backend);
  }

  recordRetry(backend: Backend): void {
    backend.retries++;
    this.#entries.get(backend)?.series.retries.inc();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#healthTimer !== undefined) clearInterval(this.#healthTimer);
    this.#healthTimer = undefined;
    const closing: Promise<void>[] = [];
    for (const entry of this.#entries.values()) {
      closing.push(entry.healthClient.destroy().catch(() => undefined));
      if (entry.backend.pool) closing.push(entry.backend.pool.destroy().catch(() => undefined));
    }
    this.#entries.clear();
    this.#list = [];
    await Promise.all(closing);
  }

  #remove(backend: Backend): void {
    const entry = this.#entries.get(backend);
    if (!entry) return;
    this.#entries.delete(backend);
    this.#list = this.#list.filter((candidate) => candidate !== backend);
    if (backend.state !== "draining") backend.state = "down";
    // close() lets in-flight requests finish, then frees the sockets.
    void entry.healthClient.close().catch(() => undefined);
    void backend.pool?.close().catch(() => undefined);
  }

  #markDown(backend: Backend): void {
    if (backend.state !== "up") return;
    backend.state = "down";
    backend.ejections++;
    backend.healthPasses = 0;
    backend.healthFailures = 0;
    this.#entries.get(backend)?.series.ejections.inc();
    this.#log.warn(`${backend.id} (${backend.url}) is down`);
  }

  #markUp(backend: Backend): void {
    if (backend.state !== "down") return;
    backend.state = "up";
    backend.consecutiveFailures = 0;
    backend.slowStartSinceMs = this.#config.slowStartMs > 0 ? Date.now() : undefined;
    this.#log.warn(`${backend.id} (${backend.url}) is up`);
    this.#onCapacity();
  }

  #checkAll(): void {
    for (const entry of this.#entries.values()) this.#checkOne(entry);
  }

  #checkOne(entry: Entry): void {
    if (entry.checking || entry.backend.state === "draining") return;
    entry.checking = true;
    void this.#check(entry).finally(() => {
      entry.checking = false;
    });
  }

  async #check(entry: Entry): Promise<void> {
    const { backend } = entry;
    let passed = false;
    try {
      const response = await entry.healthClient.request({
        method: "GET",
        path: this.#config.healthPath,
        headersTimeout: this.#config.healthTimeoutMs,
        bodyTimeout: this.#config.healthTimeoutMs,
      });
      await response.body.dump();
      passed = response.statusCode === 200;
    } catch {
      passed = false;
    }
    if (this.#closed || !this.#entries.has(backend)) return;
    if (passed) {
      backend.healthFailures = 0;
      backend.healthPasses++;
      if (backend.state === "down" && backend.healthPasses >= this.#config.riseCount) this.#markUp(backend);
    } else {
      backend.healthPasses = 0;
      backend.healthFailures++;
      if (backend.state === "up" && backend.healthFailures >= this.#config.fallCount) this.#markDown(backend);
    }
  }
}
