/**
 * One instance behind the balancer: its state, its figures, and (in HTTP mode) its keep-alive pool.
 * The balancer owns every Backend; nothing else changes `active`.
 */
import { Pool, type Dispatcher } from "undici";
import { RawUpstreamPool, type Upstream } from "./raw-upstream-pool.js";

export type BackendState = "up" | "down" | "draining";

/** The figures `/_lb/backends` shows for one instance. */
export interface BackendView {
  id: string;
  url: string;
  state: BackendState;
  weight: number;
  active: number;
  requests: number;
  failures: number;
  retries: number;
  ejections: number;
}

export interface BackendPoolOptions {
  /** The HTTP client to the instance: the balancer's own raw one, or undici's Pool. */
  client: "raw" | "undici";
  connections: number;
  keepAliveMs: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
}

export class Backend {
  readonly id: string;
  readonly url: string;
  readonly host: string;
  readonly port: number;
  weight: number;
  state: BackendState = "up";
  /** Requests (HTTP mode) or connections (TCP mode) placed here and not finished, queued ones included. */
  active = 0;
  requests = 0;
  /** Failed requests (500/502/504 or a broken connection), all time. */
  failures = 0;
  /** Requests that failed here and were sent again elsewhere. */
  retries = 0;
  /** Times this instance was taken out of rotation, by passive ejection or failed health checks. */
  ejections = 0;
  /** Consecutive failures seen on live traffic; reset by any good answer. */
  consecutiveFailures = 0;
  /** Consecutive results of active health checks, counted toward rise (passes) or fall (failures). */
  healthPasses = 0;
  healthFailures = 0;
  /** When slow start began (just added, or just back from down); `undefined` for full weight. */
  slowStartSinceMs: number | undefined;
  /** In HTTP mode, the keep-alive connections to the instance; `undefined` in TCP mode. */
  readonly pool: Upstream | undefined;

  constructor(id: string, url: string, weight: number, pool?: BackendPoolOptions, slowStartSinceMs?: number) {
    this.id = id;
    this.url = url;
    this.weight = weight;
    const parsed = new URL(url);
    this.host = parsed.hostname;
    this.port = Number(parsed.port || 80);
    this.slowStartSinceMs = slowStartSinceMs;
    this.pool = pool && (pool.client === "raw" ? new RawUpstreamPool(url, pool) : undiciUpstream(url, pool));
  }

  /**
   * The weight least-connections uses now, scaled by 1000 so that it stays an integer: the full weight,
   * or during slow start a share ramping from 10% to 100%.
   */
  effectiveWeight(nowMs: number, slowStartMs: number): number {
    const full = this.weight * 1000;
    if (this.slowStartSinceMs === undefined) return full;
    const elapsedMs = nowMs - this.slowStartSinceMs;
    if (elapsedMs >= slowStartMs) {
      this.slowStartSinceMs = undefined;
      return full;
    }
    return Math.max(Math.ceil(full / 10), Math.floor((full * elapsedMs) / slowStartMs));
  }

  view(): BackendView {
    return {
      id: this.id,
      url: this.url,
      state: this.state,
      weight: this.weight,
      active: this.active,
      requests: this.requests,
      failures: this.failures,
      retries: this.retries,
      ejections: this.ejections,
    };
  }
}

function undiciUpstream(url: string, options: BackendPoolOptions): Upstream {
  const pool = new Pool(url, {
    connections: options.connections,
    // One request at a time per connection: a pipelined request behind a slow one would wait for
    // it, which defeats least-connections.
    pipelining: 1,
    // Below the instance's own keep-alive timeout, so the instance never closes a socket we reuse.
    keepAliveTimeout: options.keepAliveMs,
    keepAliveMaxTimeout: options.keepAliveMs,
    connectTimeout: options.connectTimeoutMs,
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: options.bodyTimeoutMs,
  });
  return {
    takesHeadLines: false,
    dispatch: (request, handler) =>
      pool.dispatch(
        { ...request, method: request.method as Dispatcher.HttpMethod },
        handler as unknown as Dispatcher.DispatchHandler,
      ),
    close: () => pool.close(),
    destroy: () => pool.destroy(),
  };
}
