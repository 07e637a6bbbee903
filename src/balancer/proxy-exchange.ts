/**
 * One client request on its way through the balancer: its upstream headers and body, each attempt on
 * an instance, and the response streamed back. It is undici's dispatch handler itself (the raw
 * callback interface: headers arrive as raw buffers and body chunks are written straight to the client,
 * with no parsing into objects and no copies), and it decides whether a failed attempt may be retried.
 */
import type { FrontRequest, FrontResponse } from "./front.js";
import type { Readable } from "node:stream";
import type { Backend } from "./backend.js";
import { balancerProblem, sendProblem, type BalancerProblemCode } from "./balancer-errors.js";
import { PROBLEM_CONTENT_TYPE } from "../http/problem-details.js";
import { HOP_BY_HOP, HeadLines, PLAIN_CONNECTION } from "./head-lines.js";
import type { ForwardedHead, UpstreamHandler, UpstreamRequest } from "./raw-upstream-pool.js";
import type { AccessLog, Termination } from "./access-log.js";
import type { RequestIdGenerator } from "../http/request-id.js";
import type { RequestSpan, Tracing } from "../telemetry/tracing.js";

/** What an exchange needs from the balancer. */
export interface ExchangeHost {
  readonly maxRetries: number;
  readonly upstreamBodyTimeoutMs: number;
  /** Longest a response waits for a client that takes nothing (its socket's buffer full). */
  readonly clientSendTimeoutMs: number;
  readonly sseMaxAgeMs: number;
  readonly retryAfterSeconds: number;
  /** The access log, when there is one (`--access-log`). */
  readonly accessLog: AccessLog | undefined;
  /** Makes the id of a request that came without a safe X-Request-Id. */
  readonly requestIds: RequestIdGenerator;
  /** OpenTelemetry, when on (`--otel-endpoint`): a span per request, passed on as traceparent. */
  readonly tracing: Tracing | undefined;
  /** Places the exchange again (retry) on another instance if one has room, else queues it. */
  place(exchange: ProxyExchange): void;
  /** The attempt on `backend` is over; `outcome` says whether it counts for or against the instance. */
  attemptEnded(exchange: ProxyExchange, backend: Backend, outcome: AttemptOutcome): void;
  /** Takes a token from the retry budget (for retries of requests that reached an instance). */
  tryRetry(): boolean;
  /** The request failed on `backend` and is about to be sent again elsewhere. */
  retrying(backend: Backend): void;
}

/**
 * `ok`: the instance answered (any status it meant to send). `failed`: a 500/502/504, a timeout, or a
 * broken connection after the whole request was sent: what the instance did. `unreachable`: no connection
 * could be made. `neutral`: says nothing about the instance, for or against: the client went away or
 * stalled, its request was refused before it was sent, or the connection broke before the whole request
 * was sent (an instance refuses a body over its limit so; one that is really down fails to connect).
 */
export type AttemptOutcome =
  { kind: "ok"; durationMs: number } | { kind: "failed" } | { kind: "unreachable" } | { kind: "neutral" };

const CHECKED_NAME_LENGTHS = new Set([...HOP_BY_HOP, "content-type"].map((name) => name.length));

const NO_HEADERS: string[] = [];

const latin1 = (text: Buffer | string): string => (typeof text === "string" ? text : text.toString("latin1"));

const TIMEOUT_CODES = new Set([
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UPSTREAM_HEADERS_TIMEOUT",
  "UPSTREAM_BODY_TIMEOUT",
]);

/** undici refused to send the request as the client made it (a header value it does not allow, ...). */
const REFUSED_CODES = new Set([
  "UND_ERR_INVALID_ARG",
  "UND_ERR_NOT_SUPPORTED",
  "UND_ERR_REQ_CONTENT_LENGTH_MISMATCH",
]);

const BODY_TIMEOUT_CODES = new Set(["UND_ERR_BODY_TIMEOUT", "UPSTREAM_BODY_TIMEOUT"]);

/** How long a client's unread request body is still read (and dropped) after its answer, at most. */
const LINGER_MS = 2000;

const UNREACHABLE_CODES = new Set([
  "UPSTREAM_CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/** The X-Forwarded-For to send: what the client sent, if anything, then the client's own address. */
function forwardedFor(sent: string | undefined, ip: string): string {
  return sent === undefined ? ip : `${sent}, ${ip}`;
}

/**
 * The header lines with the client's traceparent (if any) replaced by the balancer's span's: the
 * instance's span is then the child of the balancer's, itself the child of the client's.
 */
function withTraceparent(lines: string, traceparent: string): string {
  const kept = lines.replace(/^traceparent:[^\r]*\r\n/gim, "");
  return traceparent === "" ? kept : `${kept}traceparent: ${traceparent}\r\n`;
}

/** Header lines (each ending in CRLF) as names and values alternating. */
function pairsOf(lines: string): string[] {
  const pairs: string[] = [];
  const walk = new HeadLines(lines, 0);
  while (walk.next()) pairs.push(walk.name, walk.value);
  return pairs;
}

/**
 * Answers a request the balancer cannot proxy and returns true: CONNECT asks for a tunnel, whose bytes
 * would otherwise reach an instance as requests. (Upgrade is not refused: the header is hop-by-hop and
 * dropped, so the instance sees a plain request, which RFC 9110 7.8 allows a server to answer.) The
 * connection is closed right after the answer, so that nothing the client sent after it is read.
 */
export function refuseUnproxiable(req: FrontRequest, res: FrontResponse): boolean {
  if (req.method !== "CONNECT") return false;
  const body = JSON.stringify(
    balancerProblem(501, "not_implemented", "the balancer does not open tunnels (CONNECT)"),
  );
  res.writeHead(501, {
    "content-type": PROBLEM_CONTENT_TYPE,
    "content-length": Buffer.byteLength(body),
    connection: "close",
  });
  // Not end(): a front would then read what followed on the connection as the next request.
  res.write(Buffer.from(body));
  setImmediate(() => res.destroy());
  return true;
}

export class ProxyExchange implements UpstreamHandler {
  readonly req: FrontRequest;
  readonly res: FrontResponse;
  readonly #host: ExchangeHost;
  /** The upstream request's headers as pairs, or as lines (made once, on first use). */
  #headers: string[] | undefined;
  #headLines: UpstreamRequest["headLines"];
  readonly #body: Buffer | Readable | null;
  /** May the request be sent again after an instance may have seen it (GET/HEAD or Idempotency-Key)? */
  readonly #retryableAfterSend: boolean;
  /** Instances this request already failed on (made at the first failure). */
  tried: Set<Backend> | undefined;
  #attempts = 0;
  #backend: Backend | undefined;
  #abort: ((err?: Error) => void) | undefined;
  /** The instance saw the request: all of it was written, or it answered. */
  #sent = false;
  /** All of the request was written to the instance (what the instance did next is its own doing). */
  #requestWritten = false;
  #responseStarted = false;
  #startedAtMs = 0;
  #clientGone = false;
  #finished = false;
  #sseTimer: NodeJS.Timeout | undefined;
  #sseExpired = false;
  /** The instance answered 500/502/504: passed on to the client, counted as the instance's failure. */
  #failedResponse = false;
  /** The response is server-sent events. */
  #eventStream = false;
  #resume: (() => void) | undefined;
  #awaitingDrain = false;
  /** Armed while the client's socket is full; when it fires, the client has stalled too long. */
  #stallTimer: NodeJS.Timeout | undefined;
  /** Set while queued, so the exchange can leave the queue when its client goes away. */
  cancelQueued: (() => void) | undefined;
  /** The client's safe X-Request-Id, or one the balancer made: passed to the instance, logged. */
  readonly requestId: string;
  /** The access log when this request is logged (sampled); every field below is kept only then. */
  readonly #log: AccessLog | undefined;
  #arrivedAtMs = 0;
  #firstDispatchAtMs = -1;
  #connectedAtMs = -1;
  #headAtMs = -1;
  #status = -1;
  #bytesOut = 0;
  /** The client took none of its response for clientSendTimeoutMs and was cut off. */
  #stalled = false;
  #logged = false;
  /** This request's span, when tracing is on. */
  readonly #span: RequestSpan | undefined;
  /** Logged or traced: its end is recorded (#recordEnd). */
  readonly #watched: boolean;

  constructor(host: ExchangeHost, req: FrontRequest, res: FrontResponse, body: Buffer | Readable | null) {
    this.#host = host;
    this.req = req;
    this.res = res;
    this.#body = body;
    const method = req.method;
    // The front decides (request-head.ts): a key the client named in Connection is not passed on, so
    // it does not count.
    this.#retryableAfterSend =
      (method === "GET" || method === "HEAD" || req.forwardLines.hasIdempotencyKey) &&
      (body === null || Buffer.isBuffer(body));
    this.requestId = req.forwardLines.requestId ?? host.requestIds.next();
    // Off, the access log costs this one test; on, a few clock reads and one line at the end.
    const log = host.accessLog;
    this.#log = log !== undefined && log.sampled() ? log : undefined;
    this.#span = host.tracing?.startRequest(`${method ?? "GET"} (proxied)`, req.headers, {
      "http.request.method": method ?? "GET",
      "boxoffice.request_id": this.requestId,
    });
    this.#watched = this.#log !== undefined || this.#span !== undefined;
    if (this.#log !== undefined) this.#arrivedAtMs = performance.now();
    res.once("close", () => this.#onClientClose());
  }

  get finished(): boolean {
    return this.#finished || this.#clientGone;
  }

  /** The client left before the exchange could be placed again (between two attempts). */
  leftUnplaced(): void {
    if (this.#watched) this.#recordEnd(`C${this.#stage()}`);
  }

  /** Sends the request to `backend` (already counted as active there by the balancer). */
  dispatchTo(backend: Backend): void {
    this.cancelQueued = undefined;
    this.#backend = backend;
    this.#attempts++;
    this.#sent = false;
    this.#requestWritten = false;
    this.#abort = undefined;
    this.#startedAtMs = performance.now();
    if (this.#log !== undefined) {
      if (this.#firstDispatchAtMs < 0) this.#firstDispatchAtMs = this.#startedAtMs;
      this.#connectedAtMs = -1;
      this.#headAtMs = -1;
    }
    const lines = this.req.forwardLines;
    const pool = backend.pool!;
    // The front's lines are the one normalised head for every client (one Host, one length or none);
    // a client's safe X-Request-Id is among them, else the one made here is added.
    this.#headLines ??= {
      lines:
        `${this.#span === undefined ? lines.lines : withTraceparent(lines.lines, this.#span.traceparent)}x-forwarded-for: ${forwardedFor(lines.forwardedFor, lines.clientIp)}\r\nx-forwarded-proto: http\r\n` +
        (lines.requestId === undefined ? `x-request-id: ${this.requestId}\r\n` : ""),
      hasHost: lines.hasHost,
      hasLength: lines.hasLength,
    };
    if (!pool.takesHeadLines) this.#headers ??= pairsOf(this.#headLines.lines);
    pool.dispatch(
      {
        path: this.req.url ?? "/",
        method: this.req.method ?? "GET",
        headers: this.#headers ?? NO_HEADERS,
        headLines: pool.takesHeadLines ? this.#headLines : undefined,
        body: this.#body,
        // For every response, server-sent events too: no header of the client's switches it off.
        bodyTimeout: this.#host.upstreamBodyTimeoutMs,
      },
      this,
    );
  }

  /** Answers the client with the balancer's own error (no instance could take the request). */
  reject(
    status: number,
    code: Extract<
      BalancerProblemCode,
      "unavailable" | "backend_failed" | "backend_timeout" | "invalid_request" | "payload_too_large"
    >,
    detail: string,
    termination: Termination = "PQ",
  ): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#abandonBody();
    const headers: Record<string, string> =
      status === 503
        ? { "retry-after": String(this.#host.retryAfterSeconds), "x-request-id": this.requestId }
        : { "x-request-id": this.requestId };
    if (!this.#clientGone) {
      this.#status = status;
      this.#bytesOut += sendProblem(this.res, status, code, detail, headers);
    }
    if (this.#watched) this.#recordEnd(termination);
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#log !== undefined) this.#connectedAtMs = performance.now();
    if (this.#clientGone) abort(new Error("client went away"));
  }

  /** Called by undici (not in its public types) once the whole request is written to the socket. */
  onRequestSent(): void {
    this.#sent = true;
    this.#requestWritten = true;
  }

  /** The raw client's head: its lines go to the client as they are when the front can take them. */
  onForwardHead(statusCode: number, head: ForwardedHead, resume: () => void): boolean {
    if (statusCode < 200) return true;
    this.#responseArrived(resume);
    if (this.#clientGone) return false;
    if (this.res.writeHeadLines !== undefined)
      this.res.writeHeadLines(statusCode, head.lines, head.hasLength);
    else this.res.writeHead(statusCode, pairsOf(head.lines));
    this.#responseHeadWritten(statusCode, head.eventStream);
    return true;
  }

  onHeaders(statusCode: number, rawHeaders: (Buffer | string)[], resume: () => void): boolean {
    if (statusCode < 200) return true;
    this.#responseArrived(resume);
    const headers: string[] = [];
    let connectionListed: string | undefined;
    let eventStream = false;
    for (let index = 0; index < rawHeaders.length; index += 2) {
      const name = latin1(rawHeaders[index]!);
      // latin1 keeps every byte of the value as it came; Node writes header strings back as latin1.
      const value = latin1(rawHeaders[index + 1]!);
      // Only names as long as a hop-by-hop header or content-type need a closer look.
      if (CHECKED_NAME_LENGTHS.has(name.length)) {
        const lower = name.toLowerCase();
        if (HOP_BY_HOP.has(lower)) {
          if (lower === "connection") connectionListed = value.toLowerCase();
          continue;
        }
        if (lower === "content-type" && value.startsWith("text/event-stream")) eventStream = true;
      }
      headers.push(name, value);
    }
    // Connection may name more headers to drop; "keep-alive" and "close" (nearly always all it says)
    // name none that are still there.
    if (connectionListed !== undefined && !PLAIN_CONNECTION.has(connectionListed)) {
      const listed = connectionListed.split(",").map((token) => token.trim());
      for (let index = headers.length - 2; index >= 0; index -= 2) {
        if (listed.includes(headers[index]!.toLowerCase())) headers.splice(index, 2);
      }
    }
    if (this.#clientGone) return false;
    this.res.writeHead(statusCode, headers);
    this.#responseHeadWritten(statusCode, eventStream);
    return true;
  }

  /** The streamed request body, while the client is still sending it. */
  #unreadBody(): Readable | undefined {
    const body = this.#body;
    return body !== null && !Buffer.isBuffer(body) && !body.readableEnded ? body : undefined;
  }

  /**
   * The exchange is over before the client's body was all read: the rest is read and dropped for a
   * while, so that the client reads its answer instead of a reset (a lingering close), then the
   * connection is cut. A body that ends in time leaves the connection as its front decides: the raw
   * front closes it, Node's keeps it for the next request.
   */
  #abandonBody(): void {
    const body = this.#unreadBody();
    if (body === undefined) return;
    body.resume();
    // The connection itself: Node's response lets go of it once ended, and a paused one would not even
    // notice the client closing. Both fronts' requests carry their net.Socket.
    const connection = this.req.socket as { destroy?: () => void };
    const timer = setTimeout(() => connection.destroy?.(), LINGER_MS);
    timer.unref();
    body.once("end", () => clearTimeout(timer));
    body.once("error", () => undefined);
  }

  #responseArrived(resume: () => void): void {
    if (this.#log !== undefined) this.#headAtMs = performance.now();
    this.#sent = true;
    this.#responseStarted = true;
    this.#resume = resume;
  }

  #responseHeadWritten(statusCode: number, eventStream: boolean): void {
    this.#status = statusCode;
    if (statusCode === 500 || statusCode === 502 || statusCode === 504) this.#failedResponse = true;
    this.#eventStream = eventStream;
    if (eventStream) {
      // Long-lived streams are ended after a while so that clients reconnect and spread over new instances.
      this.#sseTimer = setTimeout(() => {
        this.#sseTimer = undefined;
        this.#sseExpired = true;
        this.#abort?.(new Error("server-sent events stream reached its maximum age"));
      }, this.#host.sseMaxAgeMs);
    }
  }

  onData(chunk: Buffer): boolean {
    if (this.#clientGone) return false;
    this.#bytesOut += chunk.length;
    return this.#written(this.res.write(chunk));
  }

  /** Body bytes the client reuses after the call: a front that can copies them as it writes them. */
  onBorrowedData(chunk: Buffer): boolean {
    if (this.#clientGone) return false;
    this.#bytesOut += chunk.length;
    const res = this.res;
    return this.#written(
      res.writeBorrowed !== undefined ? res.writeBorrowed(chunk) : res.write(Buffer.from(chunk)),
    );
  }

  /**
   * `more`: false when the client's socket is full. The instance is then read no further (the upstream
   * client pauses) until the client drains, so a client that reads slowly costs one socket buffer, not
   * the whole response; one that reads nothing for `clientSendTimeoutMs` is cut off.
   */
  #written(more: boolean): boolean {
    if (!more && !this.#awaitingDrain) {
      this.#awaitingDrain = true;
      this.res.once("drain", this.#onDrain);
      this.#stallTimer = setTimeout(this.#onStall, this.#host.clientSendTimeoutMs);
    }
    return more;
  }

  readonly #onDrain = (): void => {
    this.#awaitingDrain = false;
    this.#clearStallTimer();
    this.#resume?.();
  };

  readonly #onStall = (): void => {
    this.#stallTimer = undefined;
    this.#stalled = true;
    // Its close ends the upstream request too (#onClientClose), counted against no one.
    this.res.destroy();
  };

  #clearStallTimer(): void {
    if (this.#stallTimer !== undefined) clearTimeout(this.#stallTimer);
    this.#stallTimer = undefined;
  }

  onComplete(): void {
    this.#clearSseTimer();
    this.#clearStallTimer();
    if (!this.#clientGone) this.res.end();
    this.#finished = true;
    this.#abandonBody();
    const backend = this.#backend!;
    this.#host.attemptEnded(
      this,
      backend,
      this.#failedResponse
        ? { kind: "failed" }
        : { kind: "ok", durationMs: performance.now() - this.#startedAtMs },
    );
    if (this.#watched) this.#recordEnd("--");
  }

  onError(err: Error): void {
    this.#clearSseTimer();
    this.#clearStallTimer();
    const backend = this.#backend!;
    const code = (err as { code?: string }).code ?? "";
    // An event stream ends when it reaches its age, or when the instance has nothing to say for the
    // body timeout: the client reconnects; neither is the instance failing.
    if (this.#sseExpired || (this.#eventStream && BODY_TIMEOUT_CODES.has(code))) {
      this.#finished = true;
      if (!this.#clientGone) this.res.end();
      this.#host.attemptEnded(
        this,
        backend,
        this.#sseExpired
          ? { kind: "ok", durationMs: performance.now() - this.#startedAtMs }
          : { kind: "neutral" },
      );
      if (this.#watched) this.#recordEnd(this.#sseExpired ? "--" : "sD");
      return;
    }
    if (this.#clientGone) {
      // The client left or stalled; the instance did nothing wrong.
      this.#finished = true;
      this.#host.attemptEnded(this, backend, { kind: "neutral" });
      if (this.#watched) this.#recordEnd(`${this.#stalled ? "c" : "C"}${this.#stage()}`);
      return;
    }
    if (REFUSED_CODES.has(code)) {
      // Never sent: the request is one the upstream client will not write (a control byte in a header).
      this.#host.attemptEnded(this, backend, { kind: "neutral" });
      this.reject(400, "invalid_request", `the request cannot be passed on as it is (${err.message})`, "PC");
      return;
    }
    const unreachable = UNREACHABLE_CODES.has(code);
    // Not sent in full, or refused at connect: the instance cannot have acted on it.
    const neverActedOn = !this.#sent || unreachable;
    this.#host.attemptEnded(
      this,
      backend,
      unreachable ? { kind: "unreachable" } : this.#requestWritten ? { kind: "failed" } : { kind: "neutral" },
    );
    if (this.#responseStarted) {
      // Part of the response is already with the client: nothing to do but cut the connection.
      this.#finished = true;
      this.#abandonBody();
      this.res.destroy();
      if (this.#watched) this.#recordEnd(TIMEOUT_CODES.has(code) ? "sD" : "SD");
      return;
    }
    const replayable = this.#body === null || Buffer.isBuffer(this.#body);
    const mayRetry =
      this.#attempts <= this.#host.maxRetries &&
      replayable &&
      (neverActedOn || (this.#retryableAfterSend && this.#host.tryRetry()));
    if (mayRetry) {
      (this.tried ??= new Set()).add(backend);
      this.#host.retrying(backend);
      this.#host.place(this);
      return;
    }
    const stage = unreachable ? "C" : this.#stage();
    if (TIMEOUT_CODES.has(code)) {
      this.reject(
        504,
        "backend_timeout",
        `instance ${backend.id} did not answer in time (${code})`,
        `s${stage}`,
      );
    } else if (!replayable && !this.#requestWritten) {
      // RFC 9110 15.5.14: a server refusing content too large for it may close the connection, which is
      // what an instance does (a deliberate close: EPIPE means it ended its side before the reset).
      this.reject(
        413,
        "payload_too_large",
        `instance ${backend.id} closed the connection before it took the whole request body ` +
          `(${code || err.message}), as it does with a body over its size limit; its own answer, if ` +
          "it sent one, was lost with the connection",
        "SC",
      );
    } else if (!neverActedOn && !this.#retryableAfterSend) {
      this.reject(
        502,
        "backend_failed",
        `instance ${backend.id} failed after the request was sent (${code || err.message}); it was not ` +
          "sent again because it is not idempotent: send an Idempotency-Key header to make it safe to retry",
        `S${stage}`,
      );
    } else {
      this.reject(
        502,
        "backend_failed",
        `instance ${backend.id} failed (${code || err.message})`,
        `S${stage}`,
      );
    }
  }

  /** Where the exchange is: queued, connecting or sending, waiting for the head, or passing the body. */
  #stage(): "Q" | "C" | "H" | "D" {
    if (this.#backend === undefined) return "Q";
    if (this.#responseStarted) return "D";
    return this.#requestWritten ? "H" : "C";
  }

  /** Writes the request's one access log line and ends its span (called only when one of them is on). */
  #recordEnd(termination: Termination): void {
    if (this.#logged) return;
    this.#logged = true;
    this.#span?.end(this.#status, {
      "boxoffice.termination": termination,
      "boxoffice.attempts": this.#attempts,
      ...(this.#backend === undefined ? {} : { "boxoffice.instance": this.#backend.url }),
    });
    const log = this.#log;
    if (log === undefined) return;
    const now = performance.now();
    const dispatchedAt = this.#backend === undefined ? -1 : this.#startedAtMs;
    const body = this.#body;
    const declared = this.req.headers["content-length"];
    log.record({
      requestId: this.requestId,
      client: this.req.forwardLines.clientIp,
      method: this.req.method ?? "GET",
      path: log.pathOf(this.req.url ?? "/"),
      status: this.#status,
      bytesIn:
        body === null
          ? 0
          : Buffer.isBuffer(body)
            ? body.length
            : declared !== undefined
              ? Number(declared)
              : -1,
      bytesOut: this.#bytesOut,
      instance: this.#backend?.id ?? null,
      instanceUrl: this.#backend?.url ?? null,
      attempts: this.#attempts,
      // Never sent to an instance: all its time was spent waiting for one.
      queueMs: (this.#firstDispatchAtMs < 0 ? now : this.#firstDispatchAtMs) - this.#arrivedAtMs,
      connectMs: this.#connectedAtMs < 0 ? -1 : this.#connectedAtMs - dispatchedAt,
      responseMs: this.#headAtMs < 0 ? -1 : this.#headAtMs - dispatchedAt,
      totalMs: now - this.#arrivedAtMs,
      termination,
    });
  }

  #clearSseTimer(): void {
    if (this.#sseTimer !== undefined) clearTimeout(this.#sseTimer);
    this.#sseTimer = undefined;
  }

  #onClientClose(): void {
    if (this.#finished) return;
    this.#clientGone = true;
    this.#clearStallTimer();
    this.res.off("drain", this.#onDrain);
    if (this.cancelQueued) {
      this.cancelQueued();
      this.cancelQueued = undefined;
      this.#finished = true;
      if (this.#watched) this.#recordEnd("CQ");
      return;
    }
    this.#abort?.(new Error("client went away"));
  }
}
