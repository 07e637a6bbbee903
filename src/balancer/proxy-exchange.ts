/**
 * One client request on its way through the balancer: its upstream headers and body, each attempt on
 * an instance, and the response streamed back. It is undici's dispatch handler itself (the raw
 * callback interface: headers arrive as raw buffers and body chunks are written straight to the client,
 * with no parsing into objects and no copies), and it decides whether a failed attempt may be retried.
 */
import type { FrontRequest, FrontResponse } from "./front.js";
import type { Readable } from "node:stream";
import type { Backend } from "./backend.js";
import { sendProblem } from "./balancer-errors.js";
import { clientIp } from "./client-ip.js";
import { HOP_BY_HOP, HeadLines, PLAIN_CONNECTION } from "./head-lines.js";
import type { ForwardedHead, UpstreamHandler, UpstreamRequest } from "./raw-upstream-pool.js";

/** What an exchange needs from the balancer. */
export interface ExchangeHost {
  readonly maxRetries: number;
  readonly upstreamBodyTimeoutMs: number;
  readonly sseMaxAgeMs: number;
  readonly retryAfterSeconds: number;
  /** Places the exchange again (retry) on another instance if one has room, else queues it. */
  place(exchange: ProxyExchange): void;
  /** The attempt on `backend` is over; `failed` says whether it counts as the instance's failure. */
  attemptEnded(exchange: ProxyExchange, backend: Backend, outcome: AttemptOutcome): void;
  /** Takes a token from the retry budget (for retries of requests that reached an instance). */
  tryRetry(): boolean;
  /** The request failed on `backend` and is about to be sent again elsewhere. */
  retrying(backend: Backend): void;
}

/**
 * `ok`: the instance answered (any status it meant to send). `failed`: a 500/502/504 or a broken
 * connection after the request was sent. `unreachable`: the request never reached the instance.
 */
export type AttemptOutcome =
  { kind: "ok"; durationMs: number } | { kind: "failed" } | { kind: "unreachable" };

const CHECKED_NAME_LENGTHS = new Set([...HOP_BY_HOP, "content-type"].map((name) => name.length));

const FORWARD_CHECKED_LENGTHS = new Set(
  [...HOP_BY_HOP, "x-forwarded-for", "x-forwarded-proto", "expect"].map((name) => name.length),
);

const NO_HEADERS: string[] = [];

const latin1 = (text: Buffer | string): string => (typeof text === "string" ? text : text.toString("latin1"));

const TIMEOUT_CODES = new Set([
  "UND_ERR_HEADERS_TIMEOUT",
  "UND_ERR_BODY_TIMEOUT",
  "UPSTREAM_HEADERS_TIMEOUT",
  "UPSTREAM_BODY_TIMEOUT",
]);

const UNREACHABLE_CODES = new Set([
  "UPSTREAM_CONNECT_TIMEOUT",
  "ECONNREFUSED",
  "EHOSTUNREACH",
  "ENETUNREACH",
  "ENOTFOUND",
  "EAI_AGAIN",
  "UND_ERR_CONNECT_TIMEOUT",
]);

/** The upstream request's headers, from the client's raw ones: hop-by-hop dropped, X-Forwarded-* added. */
export function forwardedHeaders(req: FrontRequest): string[] {
  const raw = req.rawHeaders;
  const out: string[] = [];
  let forwardedForSent: string | undefined;
  let connectionListed: string[] | undefined;
  for (let index = 0; index < raw.length; index += 2) {
    const name = raw[index]!;
    const value = raw[index + 1]!;
    // Only names as long as one of those looked for below need lower-casing.
    if (!FORWARD_CHECKED_LENGTHS.has(name.length)) {
      out.push(name, value);
      continue;
    }
    const lower = name.toLowerCase();
    if (HOP_BY_HOP.has(lower)) {
      if (lower === "connection" && !PLAIN_CONNECTION.has(value.toLowerCase())) {
        for (const token of value.split(",")) (connectionListed ??= []).push(token.trim().toLowerCase());
      }
      continue;
    }
    if (lower === "x-forwarded-for") {
      forwardedForSent = forwardedForSent === undefined ? value : `${forwardedForSent}, ${value}`;
      continue;
    }
    // We answer any 100-continue ourselves; undici would refuse the header.
    if (lower === "x-forwarded-proto" || lower === "expect") continue;
    out.push(name, value);
  }
  if (connectionListed !== undefined) {
    for (let index = out.length - 2; index >= 0; index -= 2) {
      if (connectionListed.includes(out[index]!.toLowerCase())) out.splice(index, 2);
    }
  }
  out.push("x-forwarded-for", forwardedFor(forwardedForSent, clientIp(req)), "x-forwarded-proto", "http");
  return out;
}

/** The X-Forwarded-For to send: what the client sent, if anything, then the client's own address. */
function forwardedFor(sent: string | undefined, ip: string): string {
  return sent === undefined ? ip : `${sent}, ${ip}`;
}

/** Header lines (each ending in CRLF) as names and values alternating. */
function pairsOf(lines: string): string[] {
  const pairs: string[] = [];
  const walk = new HeadLines(lines, 0);
  while (walk.next()) pairs.push(walk.name, walk.value);
  return pairs;
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
  #sent = false;
  #responseStarted = false;
  #startedAtMs = 0;
  #clientGone = false;
  #finished = false;
  #sseTimer: NodeJS.Timeout | undefined;
  #sseExpired = false;
  /** The instance answered 500/502/504: passed on to the client, counted as the instance's failure. */
  #failedResponse = false;
  #resume: (() => void) | undefined;
  #awaitingDrain = false;
  /** Set while queued, so the exchange can leave the queue when its client goes away. */
  cancelQueued: (() => void) | undefined;

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
    res.once("close", () => this.#onClientClose());
  }

  get finished(): boolean {
    return this.#finished || this.#clientGone;
  }

  /** Sends the request to `backend` (already counted as active there by the balancer). */
  dispatchTo(backend: Backend): void {
    this.cancelQueued = undefined;
    this.#backend = backend;
    this.#attempts++;
    this.#sent = false;
    this.#abort = undefined;
    this.#startedAtMs = performance.now();
    const lines = this.req.forwardLines;
    const wantsEvents = lines.wantsEvents;
    const pool = backend.pool!;
    // The front's lines are the one normalised head for every client (one Host, one length or none).
    this.#headLines ??= {
      lines: `${lines.lines}x-forwarded-for: ${forwardedFor(lines.forwardedFor, lines.clientIp)}\r\nx-forwarded-proto: http\r\n`,
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
        // Server-sent events may stay quiet for long; they are bounded by sseMaxAgeMs instead.
        bodyTimeout: wantsEvents ? 0 : this.#host.upstreamBodyTimeoutMs,
      },
      this,
    );
  }

  /** Answers the client with the balancer's own error (no instance could take the request). */
  reject(status: number, code: "unavailable" | "backend_failed" | "backend_timeout", detail: string): void {
    if (this.#finished) return;
    this.#finished = true;
    const headers: Record<string, string> =
      status === 503 ? { "retry-after": String(this.#host.retryAfterSeconds) } : {};
    if (!this.#clientGone) sendProblem(this.res, status, code, detail, headers);
  }

  onConnect(abort: (err?: Error) => void): void {
    this.#abort = abort;
    if (this.#clientGone) abort(new Error("client went away"));
  }

  /** Called by undici (not in its public types) once the whole request is written to the socket. */
  onRequestSent(): void {
    this.#sent = true;
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

  #responseArrived(resume: () => void): void {
    this.#sent = true;
    this.#responseStarted = true;
    this.#resume = resume;
  }

  #responseHeadWritten(statusCode: number, eventStream: boolean): void {
    if (statusCode === 500 || statusCode === 502 || statusCode === 504) this.#failedResponse = true;
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
    return this.#written(this.res.write(chunk));
  }

  /** Body bytes the client reuses after the call: a front that can copies them as it writes them. */
  onBorrowedData(chunk: Buffer): boolean {
    if (this.#clientGone) return false;
    const res = this.res;
    return this.#written(
      res.writeBorrowed !== undefined ? res.writeBorrowed(chunk) : res.write(Buffer.from(chunk)),
    );
  }

  #written(more: boolean): boolean {
    if (!more && !this.#awaitingDrain) {
      this.#awaitingDrain = true;
      this.res.once("drain", this.#onDrain);
    }
    return more;
  }

  readonly #onDrain = (): void => {
    this.#awaitingDrain = false;
    this.#resume?.();
  };

  onComplete(): void {
    this.#clearSseTimer();
    if (!this.#clientGone) this.res.end();
    this.#finished = true;
    const backend = this.#backend!;
    this.#host.attemptEnded(
      this,
      backend,
      this.#failedResponse
        ? { kind: "failed" }
        : { kind: "ok", durationMs: performance.now() - this.#startedAtMs },
    );
  }

  onError(err: Error): void {
    this.#clearSseTimer();
    const backend = this.#backend!;
    if (this.#sseExpired) {
      this.#finished = true;
      if (!this.#clientGone) this.res.end();
      this.#host.attemptEnded(this, backend, {
        kind: "ok",
        durationMs: performance.now() - this.#startedAtMs,
      });
      return;
    }
    if (this.#clientGone) {
      this.#finished = true;
      // The client left; the instance did nothing wrong.
      this.#host.attemptEnded(this, backend, {
        kind: "ok",
        durationMs: performance.now() - this.#startedAtMs,
      });
      return;
    }
    const code = (err as { code?: string }).code ?? "";
    // Not sent in full, or refused at connect: the instance cannot have acted on it.
    const unreachable = !this.#sent || UNREACHABLE_CODES.has(code);
    this.#host.attemptEnded(this, backend, unreachable ? { kind: "unreachable" } : { kind: "failed" });
    if (this.#responseStarted) {
      // Part of the response is already with the client: nothing to do but cut the connection.
      this.#finished = true;
      this.res.destroy();
      return;
    }
    const replayable = this.#body === null || Buffer.isBuffer(this.#body);
    const mayRetry =
      this.#attempts <= this.#host.maxRetries &&
      replayable &&
      (unreachable || (this.#retryableAfterSend && this.#host.tryRetry()));
    if (mayRetry) {
      (this.tried ??= new Set()).add(backend);
      this.#host.retrying(backend);
      this.#host.place(this);
      return;
    }
    if (TIMEOUT_CODES.has(code)) {
      this.reject(504, "backend_timeout", `instance ${backend.id} did not answer in time (${code})`);
    } else if (!unreachable && !this.#retryableAfterSend) {
      this.reject(
        502,
        "backend_failed",
        `instance ${backend.id} failed after the request was sent (${code || err.message}); it was not ` +
          "sent again because it is not idempotent: send an Idempotency-Key header to make it safe to retry",
      );
    } else {
      this.reject(502, "backend_failed", `instance ${backend.id} failed (${code || err.message})`);
    }
  }

  #clearSseTimer(): void {
    if (this.#sseTimer !== undefined) clearTimeout(this.#sseTimer);
    this.#sseTimer = undefined;
  }

  #onClientClose(): void {
    if (this.#finished) return;
    this.#clientGone = true;
    this.res.off("drain", this.#onDrain);
    if (this.cancelQueued) {
      this.cancelQueued();
      this.cancelQueued = undefined;
      this.#finished = true;
      return;
    }
    this.#abort?.(new Error("client went away"));
  }
}
