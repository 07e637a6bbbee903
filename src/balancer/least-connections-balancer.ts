/**
 * The HTTP/1.1 least-connections load balancer: one process with one view of every instance's in-flight
 * requests, keep-alive pools to each instance (its own client, or undici's), one bounded admission
 * queue, safe retries, and the `/_lb/` endpoints. `init()` starts listening; `close()` stops cleanly.
 */
import http from "node:http";
import type { FrontRequest, FrontResponse } from "./front.js";
import type { AddressInfo, Server, Socket } from "node:net";
import { Readable } from "node:stream";
import type { BalancerConfig } from "../config/balancer-config.js";
import type { Logger } from "../log/logger.js";
import { AdmissionQueue, type QueueTicket } from "./admission-queue.js";
import { handleAdmin } from "./admin-api.js";
import type { Backend } from "./backend.js";
import { BackendRegistry } from "./backend-registry.js";
import { listen } from "./listen.js";
import { refusalText, sendProblem } from "./balancer-errors.js";
import { BalancerMetrics, type RejectReason } from "./balancer-metrics.js";
import { LeastConnectionsPicker } from "./least-connections-picker.js";
import { PIPELINE_WRITE_BOUND_BYTES, createRawFrontServer } from "./raw-front.js";
import {
  ProxyExchange,
  refuseUnproxiable,
  type AttemptOutcome,
  type ExchangeHost,
} from "./proxy-exchange.js";
import { RetryBudget } from "./retry-budget.js";
import { clientIp } from "./client-ip.js";
import { SendWatch } from "./front.js";
import type { RequestLines } from "./head-lines.js";
import { BadRequest, REFUSED_ON_PURPOSE, parseRequestHead, type RequestHead } from "./request-head.js";

/** Pipelined requests of one node-front client held (read, not yet served) before reading stops. */
const PIPELINE_HELD_REQUESTS = 8;

const PROBLEM_CODES = {
  400: "invalid_request",
  431: "headers_too_large",
  501: "not_implemented",
} as const;

const afterIo = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

const CLIENT_ERROR_STATUS: Record<string, 408 | 431> = {
  HPE_HEADER_OVERFLOW: 431,
  ERR_HTTP_REQUEST_TIMEOUT: 408,
};

export class LeastConnectionsBalancer implements ExchangeHost {
  readonly #config: Readonly<BalancerConfig>;
  readonly metrics: BalancerMetrics;
  readonly registry: BackendRegistry;
  readonly #picker = new LeastConnectionsPicker();
  readonly #queue: AdmissionQueue<ProxyExchange>;
  readonly #budget: RetryBudget;
  readonly #server: Server;
  readonly #closeIdleConnections: () => void;
  readonly #closeAllConnections: () => void;
  #serveQueueScheduled = false;
  /** The node front's clients' pipelines: whether a request is being answered, and those held behind it. */
  readonly #pipelines = new WeakMap<Socket, { busy: boolean; waiting: (() => void)[] }>();
  #initialized = false;
  #closing: Promise<void> | undefined;
  readonly #log: Logger;

  constructor(config: Readonly<BalancerConfig>, log: Logger) {
    this.#config = config;
    this.#log = log;
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
    const requestTimeoutMs = Math.max(config.requestTimeoutMs, config.headersTimeoutMs);
    if (config.front === "raw") {
      const front = createRawFrontServer({
        maxHeaderBytes: config.maxHeaderBytes,
        headersTimeoutMs: config.headersTimeoutMs,
        requestTimeoutMs,
        clientKeepAliveMs: config.clientKeepAliveMs,
        clientSendTimeoutMs: config.clientSendTimeoutMs,
        maxClientConnections: config.maxClientConnections,
        onRequest: (req, res) => this.#onRequest(req, res),
        onClientError: (kind) => this.metrics.clientError(kind),
      });
      this.#server = front.server;
      this.#closeIdleConnections = () => front.closeIdleConnections();
      this.#closeAllConnections = () => front.closeAllConnections();
    } else {
      const checkEveryMs = Math.max(
        50,
        Math.min(1000, Math.floor(Math.min(config.headersTimeoutMs, config.clientSendTimeoutMs) / 4)),
      );
      const server = http.createServer(
        {
          maxHeaderSize: config.maxHeaderBytes,
          headersTimeout: config.headersTimeoutMs,
          requestTimeout: requestTimeoutMs,
          keepAliveTimeout: config.clientKeepAliveMs,
          // How often Node looks for clients past headersTimeout/requestTimeout (its default is 30 s).
          connectionsCheckingInterval: checkEveryMs,
          // parseRequestHead refuses a missing Host itself, with a problem+json answer like every refusal.
          requireHostHeader: false,
        },
        (req, res) => this.#inTurn(req, res),
      );
      server.maxConnections = config.maxClientConnections;
      server.on("clientError", (error: NodeJS.ErrnoException, socket: Socket) =>
        this.#onClientError(error, socket),
      );
      // CONNECT never reaches an instance (Node hands it over as a raw tunnel request).
      server.on("connect", (_req: http.IncomingMessage, socket: Socket) => {
        this.metrics.clientError("501");
        socket.on("error", () => socket.destroy());
        socket.end(refusalText(501, REFUSED_ON_PURPOSE.method));
      });
      this.#watchSends(server, checkEveryMs);
      this.#server = server;
      this.#closeIdleConnections = () => server.closeIdleConnections();
      this.#closeAllConnections = () => server.closeAllConnections();
    }
  }

  /** Cuts off node-front clients that take none of their response for `clientSendTimeoutMs`. */
  #watchSends(server: http.Server, checkEveryMs: number): void {
    const watched = new Map<Socket, SendWatch>();
    server.on("connection", (socket: Socket) => {
      watched.set(socket, new SendWatch());
      socket.once("close", () => watched.delete(socket));
    });
    const timeoutMs = this.#config.clientSendTimeoutMs;
    const sweep = setInterval(() => {
      const nowMs = Date.now();
      for (const [socket, watch] of watched) {
        if (!watch.stalled(socket, nowMs, timeoutMs)) continue;
        this.metrics.clientError("stalled");
        socket.destroy();
      }
    }, checkEveryMs);
    sweep.unref();
    server.once("close", () => clearInterval(sweep));
  }

  /**
   * Serves a node-front client's pipelined requests one at a time, the next only once the answers before
   * it have left the balancer's buffers (below PIPELINE_WRITE_BOUND_BYTES), as the raw front does: Node's
   * server reads every request of a pipeline that fits in one read and would answer them all into
   * memory. Reading from the client stops while more than a few wait.
   */
  #inTurn(req: http.IncomingMessage, res: http.ServerResponse): void {
    const socket = req.socket;
    let line = this.#pipelines.get(socket);
    if (line === undefined) {
      line = { busy: false, waiting: [] };
      this.#pipelines.set(socket, line);
      const held = line;
      socket.once("close", () => (held.waiting.length = 0));
    }
    const turn = line;
    const next = (): void => {
      if (turn.waiting.length === 0 || socket.destroyed) return;
      if (socket.writableLength > PIPELINE_WRITE_BOUND_BYTES) {
        socket.once("drain", next);
        return;
      }
      turn.waiting.shift()!();
      if (turn.waiting.length < PIPELINE_HELD_REQUESTS && socket.isPaused()) socket.resume();
    };
    const run = (): void => {
      turn.busy = true;
      // A ServerResponse emits "close" once it is done, whether it ended or its client went away.
      res.once("close", () => {
        turn.busy = false;
        next();
      });
      this.#onNodeRequest(req, res);
    };
    if (!turn.busy && turn.waiting.length === 0) return run();
    turn.waiting.push(run);
    if (turn.waiting.length >= PIPELINE_HELD_REQUESTS) socket.pause();
  }

  /**
   * The node front's requests: llhttp parsed the head; the same rules as the raw front's
   * (parseRequestHead) then decide what is refused and what goes on, on the head rebuilt from its lines.
   */
  #onNodeRequest(req: http.IncomingMessage, res: http.ServerResponse): void {
    let head = `${req.method ?? ""} ${req.url ?? ""} HTTP/${req.httpVersion}`;
    const raw = req.rawHeaders;
    for (let index = 0; index < raw.length; index += 2) head += `\r\n${raw[index]!}: ${raw[index + 1]!}`;
    let parsed: RequestHead;
    try {
      parsed = parseRequestHead(head, clientIp(req));
    } catch (error) {
      if (!(error instanceof BadRequest)) throw error;
      this.metrics.clientError(String(error.status));
      res.shouldKeepAlive = false;
      sendProblem(res, error.status, PROBLEM_CODES[error.status], error.message, { connection: "close" });
      return;
    }
    req.url = parsed.url;
    (req as { forwardLines?: RequestLines }).forwardLines = parsed.forward;
    this.#onRequest(req as http.IncomingMessage & FrontRequest, res);
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
    return (this.#server.address() as AddressInfo).port;
  }

  async init(): Promise<void> {
    if (this.#initialized) return;
    this.#initialized = true;
    this.registry.init();
    await listen(this.#server, this.#config.port, this.#config.host, this.#config.listenBacklog);
  }

  /** Stops accepting, lets in-flight requests finish for up to `graceMs`, then frees everything. */
  close(graceMs = 5000): Promise<void> {
    this.#closing ??= this.#close(graceMs);
    return this.#closing;
  }

  async #close(graceMs: number): Promise<void> {
    const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
    this.#closeIdleConnections();
    this.#queue.drainAll((exchange) => exchange.reject(503, "unavailable", "the balancer is shutting down"));
    const timer = setTimeout(() => this.#closeAllConnections(), graceMs);
    await closed;
    clearTimeout(timer);
    await this.registry.close();
  }

  retrying(backend: Backend): void {
    this.registry.recordRetry(backend);
  }

  tryRetry(): boolean {
    return this.#budget.tryRetry();
  }

  #onRequest(req: FrontRequest, res: FrontResponse): void {
    const url = req.url ?? "/";
    if (url.startsWith("/_lb/")) {
      handleAdmin(
        {
          registry: this.registry,
          metrics: this.metrics,
          adminToken: this.#config.adminToken,
          retryAfterSeconds: this.#config.retryAfterSeconds,
        },
        req,
        res,
      ).catch((error: unknown) => {
        this.#log.error({ err: error }, "admin call failed");
        if (!res.headersSent) sendProblem(res, 500, "invalid_request", "internal error");
        else res.destroy();
      });
      return;
    }
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
    this.#readBody(req).then(
      (body) => {
        if (!res.destroyed) this.place(new ProxyExchange(this, req, res, body));
      },
      () => res.destroy(),
    );
  }

  /**
   * Holds a body of up to `maxBufferedBodyBytes` so the request can be sent again; a larger body is
   * streamed (what was read so far, then the rest) and the request is not retried.
   *
   * Each streamed chunk is passed on after the I/O callbacks of the moment have run (setImmediate):
   * an instance that refuses a large body answers and closes, and its answer must be read before the
   * next chunk is written, since a write that fails on the closed connection destroys the socket with
   * the answer still unread in it.
   */
  #readBody(req: FrontRequest): Promise<Buffer | Readable> {
    const limit = this.#config.maxBufferedBodyBytes;
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const cleanup = () => {
        req.off("data", onData);
        req.off("end", onEnd);
        req.off("error", onError);
      };
      const onData = (chunk: Buffer) => {
        chunks.push(chunk);
        size += chunk.length;
        if (size <= limit) return;
        cleanup();
        req.pause();
        resolve(
          Readable.from(
            (async function* () {
              yield* chunks;
              for await (const chunk of req as AsyncIterable<Buffer>) {
                await afterIo();
                yield chunk;
              }
            })(),
            { objectMode: false },
          ),
        );
      };
      const onEnd = () => {
        cleanup();
        resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
      };
      const onError = (error: Error) => {
        cleanup();
        reject(error);
      };
      req.on("data", onData);
      req.on("end", onEnd);
      req.on("error", onError);
    });
  }

  /** Sends the exchange to the least-loaded instance with room, or queues it, or answers 503. */
  place(exchange: ProxyExchange): void {
    if (exchange.finished) return;
    if (this.registry.upCount === 0) return this.#reject(exchange, "no_backend", "no instance is up");
    // Serve the queue first: a newcomer must not overtake requests that are already waiting.
    const backend =
      this.#queue.length === 0
        ? this.#picker.pick(this.registry.list, this.#pickOptions(exchange.tried))
        : undefined;
    if (backend !== undefined) return this.#dispatch(exchange, backend);
    const ticket: QueueTicket<ProxyExchange> | undefined = this.#queue.enqueue(exchange, (timedOut) =>
      this.#reject(
        timedOut,
        "queue_timeout",
        `no instance had room within ${this.#config.queueTimeoutMs} ms`,
      ),
    );
    if (ticket === undefined)
      return this.#reject(exchange, "queue_full", "every instance is busy and the queue is full");
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

  #pickOptions(exclude: ReadonlySet<Backend> | undefined) {
    return {
      nowMs: Date.now(),
      slowStartMs: this.#config.slowStartMs,
      maxActive: this.#config.maxActivePerBackend,
      exclude,
    };
  }

  #dispatch(exchange: ProxyExchange, backend: Backend): void {
    this.registry.acquire(backend);
    exchange.dispatchTo(backend);
  }

  #reject(exchange: ProxyExchange, reason: RejectReason, detail: string): void {
    this.metrics.rejected(reason);
    exchange.reject(503, "unavailable", detail);
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

  #onClientError(error: NodeJS.ErrnoException, socket: Socket): void {
    const code = error.code ?? "";
    const status = CLIENT_ERROR_STATUS[code] ?? 400;
    this.metrics.clientError(code === "ECONNRESET" ? "reset" : String(status));
    // Node sets _httpMessage to null once a response is done with the socket (a client that closes after
    // a short answer): null and undefined both mean nothing was sent.
    const pending = (socket as { _httpMessage?: { headersSent?: boolean } | null })._httpMessage;
    if (code !== "ECONNRESET" && socket.writable && (pending == null || !pending.headersSent)) {
      socket.end(refusalText(status, error.message));
    }
    socket.destroy();
  }
}
