/**
 * A minimal HTTP/1.1 client for the balancer's hot path: keep-alive sockets to one instance, one
 * request at a time per socket, the request head written as one string, and the response head parsed
 * just enough to forward it (status, header lines, body framing). Measured against undici's Pool on the
 * same path it spends about a third less CPU per request (docs/benchmarks/balancer.md), because it
 * skips what a general client must do: header validation and objects, a wasm parser, and body streams.
 *
 * It speaks to undici's raw dispatch-handler interface (onConnect, onRequestSent, onHeaders, onData,
 * onComplete, onError), so the balancer can use either (`--upstream raw|undici`).
 */
import net, { type Socket } from "node:net";
import type { Readable } from "node:stream";
import { BoxofficeError } from "../domain/errors.js";
import { ChunkedDecoder } from "./chunked-decoder.js";
import { HeadLines, HeaderKind, PLAIN_CONNECTION, isHopByHop } from "./head-lines.js";
import { ONE_WRITE_BYTES } from "./raw-front.js";

/** What a request needs; the same shape the balancer gives undici. */
export interface UpstreamRequest {
  path: string;
  method: string;
  /** Header names and values, alternating. */
  headers: string[];
  /**
   * Or, for an Upstream that `takesHeadLines`: the header lines ready to send (each ending in CRLF),
   * and whether they include Host and Content-Length; `headers` is then not read.
   */
  headLines?: { lines: string; hasHost: boolean; hasLength: boolean } | undefined;
  body: Buffer | Readable | null;
  /** Longest silence inside the response body while the client keeps up (the pool's own by default). */
  bodyTimeout?: number;
}

/** A response head's header lines to pass on as they came, hop-by-hop ones left out. */
export interface ForwardedHead {
  /** The lines, each ending in CRLF. */
  lines: string;
  /** The lines include a Content-Length (else the side facing the client frames the body itself). */
  hasLength: boolean;
  /** The body is server-sent events. */
  eventStream: boolean;
}

/** undici's raw handler interface, with headers that may be strings. */
export interface UpstreamHandler {
  onConnect(abort: (err?: Error) => void): void;
  onRequestSent?(): void;
  onHeaders(
    statusCode: number,
    rawHeaders: (Buffer | string)[],
    resume: () => void,
    statusText: string,
  ): boolean;
  /**
   * Optional, called instead of `onHeaders` by the raw client when the handler has it: the head as lines
   * to forward, which spares making name/value pairs only to join them again.
   */
  onForwardHead?(statusCode: number, head: ForwardedHead, resume: () => void): boolean;
  onData(chunk: Buffer): boolean;
  /**
   * Optional, called instead of `onData` by the raw client when the handler has it: body bytes that are
   * valid only during the call (they sit in the client's read buffer, which the next read reuses). The
   * handler must copy what it keeps; one that sends the bytes on at once spares a copy per chunk.
   */
  onBorrowedData?(chunk: Buffer): boolean;
  onComplete(trailers: string[] | null): void;
  onError(err: Error): void;
}

export interface RawUpstreamOptions {
  keepAliveMs: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  bodyTimeoutMs: number;
}

/** Errors of the raw client; `code` says which (the balancer maps the timeouts to 504). */
export class UpstreamError extends BoxofficeError {
  constructor(
    code:
      | "UPSTREAM_HEADERS_TIMEOUT"
      | "UPSTREAM_BODY_TIMEOUT"
      | "UPSTREAM_PROTOCOL"
      | "UPSTREAM_CLOSED"
      | "UPSTREAM_CONNECT_TIMEOUT"
      | "UPSTREAM_ABORTED",
    message: string,
  ) {
    super(code, message);
  }
}

const MAX_HEAD_BYTES = 65_536;
const CRLF_CRLF = Buffer.from("\r\n\r\n");
const EMPTY = Buffer.alloc(0);
/**
 * Every connection of the client reads into this one buffer (net's `onread`), and each read is handled
 * before the next one starts; whatever must outlive a read is copied out. It spares Node's allocation of
 * a buffer for every read and the readable stream's bookkeeping for every chunk.
 */
const READ_BUFFER = Buffer.allocUnsafe(64 * 1024);

type BodyMode = "none" | "length" | "chunked" | "close";

/** What the connection's deadline is for; the pool's sweep acts on it. */
type Wait = "none" | "headers" | "body" | "idle";

/**
 * One connection to the instance, one request at a time. It goes back to the pool only at a message
 * boundary (RFC 9112 9.3): after the whole request was written and the whole response read. An instance
 * may answer before it has read the body (a 401, 404, 413 or 415); the rest of that body would then be
 * read as the start of the next request on the connection, which is how requests are smuggled, so such
 * a connection is closed instead.
 */
class RawConnection {
  readonly socket: Socket;
  readonly #pool: RawUpstreamPool;
  #handler: UpstreamHandler | undefined;
  /** The whole request is written (handed to the socket); until then the connection is never reused. */
  #requestDone = false;
  /** A streamed request body still being sent, and its listeners (to take off when the sending stops). */
  #bodyStream: Readable | undefined;
  #onBodyChunk: ((chunk: Buffer) => void) | undefined;
  #onBodyEnd: (() => void) | undefined;
  #onBodyError: ((error: Error) => void) | undefined;
  #head: Buffer | undefined;
  #headMethod = "GET";
  #inBody = false;
  #bodyMode: BodyMode = "none";
  #remaining = 0;
  #chunked = new ChunkedDecoder();
  #keepAlive = true;
  /**
   * Timeouts are deadlines checked by the pool's sweep (`expire`), not a timer per request: arming and
   * clearing two or three timers for every request cost more than the rest of the client's work.
   */
  #connectDeadlineAtMs: number;
  readonly #connectTimeoutMs: number;
  #deadlineAtMs = 0;
  #wait: Wait = "none";
  #headersTimeoutMs = 0;
  #bodyTimeoutMs = 0;
  #dead = false;

  constructor(pool: RawUpstreamPool, host: string, port: number, connectTimeoutMs: number) {
    this.#pool = pool;
    this.#connectTimeoutMs = connectTimeoutMs;
    this.#connectDeadlineAtMs = Date.now() + connectTimeoutMs;
    this.socket = net.connect({
      host,
      port,
      noDelay: true,
      onread: {
        buffer: READ_BUFFER,
        callback: (bytes) => {
          this.#onData(READ_BUFFER.subarray(0, bytes));
          return true; // pausing is done with socket.pause(), so that isPaused() tells
        },
      },
    });
    this.socket.once("connect", () => {
      this.#connectDeadlineAtMs = 0;
    });
    this.socket.on("end", () => this.#onEnd());
    this.socket.on("error", (error) => this.#fail(error));
    this.socket.on("close", () =>
      this.#fail(new UpstreamError("UPSTREAM_CLOSED", "the instance closed the connection")),
    );
  }

  /** Called by the pool's sweep: fails or closes the connection if its deadline has passed. */
  expire(nowMs: number): void {
    if (this.#connectDeadlineAtMs !== 0 && this.#connectDeadlineAtMs <= nowMs) {
      this.#fail(
        new UpstreamError("UPSTREAM_CONNECT_TIMEOUT", `no connection within ${this.#connectTimeoutMs} ms`),
      );
      return;
    }
    if (this.#deadlineAtMs === 0 || this.#deadlineAtMs > nowMs) return;
    switch (this.#wait) {
      case "headers":
        this.#fail(
          new UpstreamError(
            "UPSTREAM_HEADERS_TIMEOUT",
            `no response head within ${this.#headersTimeoutMs} ms`,
          ),
        );
        return;
      case "body":
        this.#fail(
          new UpstreamError("UPSTREAM_BODY_TIMEOUT", `response body silent for ${this.#bodyTimeoutMs} ms`),
        );
        return;
      case "idle":
        this.destroy();
        this.#pool.forget(this);
        return;
      case "none":
        return;
    }
  }

  #waitFor(wait: Wait, timeoutMs: number): void {
    this.#wait = wait;
    this.#deadlineAtMs = wait === "none" || timeoutMs <= 0 ? 0 : Date.now() + timeoutMs;
  }

  get dead(): boolean {
    return this.#dead;
  }

  /**
   * Parked longer than the keep-alive time: not to be reused even if the sweep has not closed it yet,
   * since the instance may be closing it just now (and a request sent on it would be lost).
   */
  idleExpired(nowMs: number): boolean {
    return this.#wait === "idle" && this.#deadlineAtMs !== 0 && this.#deadlineAtMs <= nowMs;
  }

  start(
    request: UpstreamRequest,
    handler: UpstreamHandler,
    headersTimeoutMs: number,
    bodyTimeoutMs: number,
  ): void {
    this.#handler = handler;
    this.#requestDone = false;
    this.#head = undefined;
    this.#inBody = false;
    this.#keepAlive = true;
    this.#headMethod = request.method;
    this.#headersTimeoutMs = headersTimeoutMs;
    this.#bodyTimeoutMs = bodyTimeoutMs;
    handler.onConnect(this.#abort);
    if (this.#handler === undefined) return; // aborted at once
    this.#waitFor("headers", headersTimeoutMs);

    let head = `${request.method} ${request.path} HTTP/1.1\r\n`;
    let hasLength = false;
    let hasHost = false;
    if (request.headLines !== undefined) {
      head += request.headLines.lines;
      hasLength = request.headLines.hasLength;
      hasHost = request.headLines.hasHost;
    } else {
      const headers = request.headers;
      for (let index = 0; index < headers.length; index += 2) {
        const name = headers[index]!;
        if (name.length === 14 && name.toLowerCase() === "content-length") hasLength = true;
        else if (name.length === 4 && name.toLowerCase() === "host") hasHost = true;
        head += `${name}: ${headers[index + 1]!}\r\n`;
      }
    }
    if (!hasHost) head += `host: ${this.#pool.hostHeader}\r\n`;
    const body = request.body;
    if (body === null) {
      this.#writeLast(`${head}\r\n`);
    } else if (Buffer.isBuffer(body)) {
      if (!hasLength) head += `content-length: ${body.length}\r\n`;
      this.#writeLast(`${head}\r\n`, body);
    } else {
      this.#streamBody(
        hasLength ? `${head}\r\n` : `${head}transfer-encoding: chunked\r\n\r\n`,
        body,
        !hasLength,
      );
    }
  }

  /** Back in the idle set: closed after `keepAliveMs` unused, below the instance's keep-alive timeout. */
  park(keepAliveMs: number): void {
    this.#waitFor("idle", keepAliveMs);
  }

  destroy(): void {
    this.#dead = true;
    this.#connectDeadlineAtMs = 0;
    this.#waitFor("none", 0);
    this.#stopBody();
    this.socket.destroy();
  }

  readonly #abort = (error?: Error): void =>
    this.#fail(error ?? new UpstreamError("UPSTREAM_ABORTED", "aborted"));

  /**
   * Writes the request's last bytes (with a small body, as one string) and tells the handler once they are with the kernel: at once when
   * the write went through synchronously (the usual case, without a callback's deferred call), else when
   * an empty write queued behind them completes.
   */
  #writeLast(data: string | Buffer, body?: Buffer): void {
    const socket = this.socket;
    this.#requestDone = true;
    const connecting = socket.connecting;
    if (body !== undefined && body.length <= ONE_WRITE_BYTES && typeof data === "string") {
      data = `${data}${body.toString("latin1")}`;
      body = undefined;
    }
    if (body !== undefined) {
      // One writev for the head and the body.
      socket.cork();
      socket.write(data, "latin1");
      socket.write(body, connecting ? this.#sent : undefined);
      socket.uncork();
    } else socket.write(data, "latin1", connecting ? this.#sent : undefined);
    if (connecting) return;
    if (socket.writableLength === 0) this.#handler?.onRequestSent?.();
    else socket.write(EMPTY, this.#sent);
  }

  #streamBody(head: string, body: Readable, chunked: boolean): void {
    this.socket.write(head, "latin1");
    this.#bodyStream = body;
    this.#onBodyChunk = (chunk: Buffer) => {
      let more: boolean;
      if (chunked) {
        // All three writes happen whatever each returns; only the last one's answer matters.
        this.socket.write(`${chunk.length.toString(16)}\r\n`, "latin1");
        this.socket.write(chunk);
        more = this.socket.write("\r\n", "latin1");
      } else more = this.socket.write(chunk);
      if (!more) {
        body.pause();
        this.socket.once("drain", this.#resumeBody);
      }
    };
    this.#onBodyEnd = () => {
      this.#stopBody();
      this.#writeLast(chunked ? "0\r\n\r\n" : EMPTY);
    };
    this.#onBodyError = (error) => this.#fail(error);
    body.on("data", this.#onBodyChunk);
    body.once("end", this.#onBodyEnd);
    body.once("error", this.#onBodyError);
  }

  readonly #resumeBody = (): void => {
    this.#bodyStream?.resume();
  };

  /**
   * Sends no more of the request body (it was all sent, or the connection is done with): the body's
   * owner decides what becomes of the rest.
   */
  #stopBody(): void {
    const body = this.#bodyStream;
    if (body === undefined) return;
    this.#bodyStream = undefined;
    body.off("data", this.#onBodyChunk!);
    body.off("end", this.#onBodyEnd!);
    body.off("error", this.#onBodyError!);
    this.socket.off("drain", this.#resumeBody);
  }

  /** Write callback: the whole request is with the kernel (unless the write failed). */
  readonly #sent = (error?: Error | null): void => {
    if (!error) this.#handler?.onRequestSent?.();
  };

  #onData(chunk: Buffer): void {
    if (this.#handler === undefined) {
      // Bytes from an idle connection: the instance is not speaking HTTP as we expect; drop it.
      this.#fail(new UpstreamError("UPSTREAM_PROTOCOL", "data on an idle connection"));
      return;
    }
    if (!this.#inBody) {
      const data: Buffer = this.#head === undefined ? chunk : Buffer.concat([this.#head, chunk]);
      const end = data.indexOf(CRLF_CRLF);
      if (end === -1) {
        if (data.length > MAX_HEAD_BYTES)
          this.#fail(new UpstreamError("UPSTREAM_PROTOCOL", "response head too large"));
        else this.#head = data === chunk ? Buffer.from(chunk) : data; // READ_BUFFER is reused
        return;
      }
      this.#head = undefined;
      if (!this.#parseHead(data.toString("latin1", 0, end))) return;
      const rest = data.subarray(end + 4);
      if (!this.#inBody) {
        // An informational (1xx) head: the real one follows.
        if (rest.length > 0) this.#onData(rest);
        return;
      }
      if (this.#bodyMode === "none" || (this.#bodyMode === "length" && this.#remaining === 0)) {
        this.#complete();
        return;
      }
      if (rest.length > 0) this.#onBody(rest);
      return;
    }
    if (this.#bodyTimeoutMs > 0 && this.#deadlineAtMs !== 0)
      this.#deadlineAtMs = Date.now() + this.#bodyTimeoutMs;
    this.#onBody(chunk);
  }

  /**
   * Parses the response head and hands it to the handler; false when the connection failed on it.
   * `asPairs`: as name/value pairs even to a handler that takes lines to forward.
   */
  #parseHead(head: string, asPairs = false): boolean {
    let lineEnd = head.indexOf("\r\n");
    if (lineEnd === -1) lineEnd = head.length;
    const statusLine = head.slice(0, lineEnd);
    const status = Number(statusLine.slice(9, 12));
    if (!statusLine.startsWith("HTTP/1.") || !Number.isInteger(status) || status < 100) {
      this.#fail(
        new UpstreamError("UPSTREAM_PROTOCOL", `bad status line ${JSON.stringify(statusLine.slice(0, 40))}`),
      );
      return false;
    }
    if (status < 200) {
      if (status !== 101) return true;
      // Never asked for (the balancer drops Upgrade): the connection would no longer speak HTTP.
      this.#fail(
        new UpstreamError("UPSTREAM_PROTOCOL", "101 Switching Protocols to a request without Upgrade"),
      );
      return false;
    }
    const handler = this.#handler!;
    if (!this.#requestDone && status >= 400) {
      // Refused before the instance read the whole body (RFC 9112 9.6): stop sending it; the
      // instance is likely to close, and a write on a closed connection would lose its answer.
      this.#keepAlive = false;
      this.#stopBody();
    }
    // Pairs for onHeaders; or, for a handler that takes them, the lines to forward as runs of the head.
    const pairs: string[] | undefined = asPairs || handler.onForwardHead === undefined ? [] : undefined;
    let forward = "";
    let runStart = lineEnd + 2;
    let length = -1;
    let chunked = false;
    let eventStream = false;
    this.#keepAlive = statusLine.charCodeAt(7) === 49; // HTTP/1.1 keeps alive unless told otherwise
    const lines = new HeadLines(head, lineEnd + 2);
    while (lines.next()) {
      const kind = lines.kind();
      switch (kind) {
        case HeaderKind.CONNECTION: {
          const tokens = lines.value.toLowerCase();
          if (tokens.includes("close")) this.#keepAlive = false;
          else if (tokens.includes("keep-alive")) this.#keepAlive = true;
          // It names more headers to drop: the handler's onHeaders sorts that out.
          if (pairs === undefined && !PLAIN_CONNECTION.has(tokens)) return this.#parseHead(head, true);
          break;
        }
        case HeaderKind.CONTENT_LENGTH:
          length = Number(lines.value);
          break;
        case HeaderKind.TRANSFER_ENCODING:
          chunked = /(?:^|,)\s*chunked\s*$/i.test(lines.value);
          break;
        case HeaderKind.CONTENT_TYPE:
          eventStream = lines.value.startsWith("text/event-stream");
          break;
      }
      if (pairs !== undefined) pairs.push(lines.name, lines.value);
      else if (isHopByHop(kind)) {
        forward += head.slice(runStart, lines.lineStart);
        runStart = lines.lineEnd + 2;
      }
    }
    if (lines.malformed) {
      this.#fail(new UpstreamError("UPSTREAM_PROTOCOL", "bad header line"));
      return false;
    }
    if (runStart < head.length) forward += `${head.slice(runStart)}\r\n`;
    if (this.#headMethod === "HEAD" || status === 204 || status === 304) this.#bodyMode = "none";
    else if (chunked) {
      this.#bodyMode = "chunked";
      this.#chunked = new ChunkedDecoder();
    } else if (length >= 0 && Number.isSafeInteger(length)) {
      this.#bodyMode = "length";
      this.#remaining = length;
    } else {
      this.#bodyMode = "close";
      this.#keepAlive = false;
    }
    this.#inBody = true;
    this.#waitFor("body", this.#bodyTimeoutMs);
    const proceed =
      pairs === undefined
        ? handler.onForwardHead!(
            status,
            { lines: forward, hasLength: length >= 0, eventStream },
            this.#resume,
          )
        : handler.onHeaders(status, pairs, this.#resume, statusLine.slice(13));
    if (!proceed && this.#handler !== undefined && this.#bodyMode !== "none") this.#pauseForClient();
    return this.#handler !== undefined;
  }

  /**
   * The client does not take the response as fast as it comes: read no more from the instance until it
   * does. The instance's silence is not timed meanwhile (the handler bounds how long a client may stall).
   */
  #pauseForClient(): void {
    this.socket.pause();
    if (this.#wait === "body") this.#deadlineAtMs = 0;
  }

  readonly #resume = (): void => {
    // The body's silence is counted from here: a slow client held it up, not the instance.
    if (this.#wait === "body") this.#waitFor("body", this.#bodyTimeoutMs);
    this.socket.resume();
  };

  /**
   * Hands body bytes to the handler: lent straight from READ_BUFFER to one that takes them borrowed
   * (`onBorrowedData`), else as a buffer of its own, since the next read overwrites READ_BUFFER.
   */
  #deliver(chunk: Buffer): void {
    const handler = this.#handler;
    if (handler === undefined) return;
    const more =
      handler.onBorrowedData !== undefined
        ? handler.onBorrowedData(chunk)
        : handler.onData(Buffer.from(chunk));
    if (!more && this.#handler !== undefined) this.#pauseForClient();
  }

  #onBody(chunk: Buffer): void {
    switch (this.#bodyMode) {
      case "length": {
        if (chunk.length > this.#remaining) {
          this.#deliver(chunk.subarray(0, this.#remaining));
          this.#keepAlive = false; // more than announced: never reuse this connection
          this.#remaining = 0;
        } else {
          this.#remaining -= chunk.length;
          this.#deliver(chunk);
        }
        if (this.#remaining === 0) this.#complete();
        return;
      }
      case "close":
        this.#deliver(chunk);
        return;
      case "chunked":
        this.#onChunked(chunk);
        return;
      case "none":
        this.#keepAlive = false;
        return;
    }
  }

  /** Decodes a chunked body (the client side re-frames it). */
  #onChunked(chunk: Buffer): void {
    let end: number;
    try {
      end = this.#chunked.feed(chunk, (data) => this.#deliver(data));
    } catch (error) {
      this.#fail(new UpstreamError("UPSTREAM_PROTOCOL", (error as Error).message));
      return;
    }
    if (end === -1 || this.#handler === undefined) return;
    if (end < chunk.length) this.#keepAlive = false; // bytes after the body: never reuse
    this.#complete();
  }

  #onEnd(): void {
    if (this.#handler !== undefined && this.#inBody && this.#bodyMode === "close") {
      this.#keepAlive = false;
      this.#complete();
      return;
    }
    this.#fail(new UpstreamError("UPSTREAM_CLOSED", "the instance closed the connection"));
  }

  #complete(): void {
    const handler = this.#handler!;
    this.#handler = undefined;
    this.#inBody = false;
    this.#waitFor("none", 0);
    if (this.socket.isPaused()) this.socket.resume();
    // Reused only at a message boundary: the whole response read (here) and the whole request written.
    if (this.#keepAlive && this.#requestDone && !this.#dead) this.#pool.release(this);
    else this.destroy();
    handler.onComplete(null);
  }

  #fail(error: Error): void {
    const handler = this.#handler;
    this.#handler = undefined;
    const wasDead = this.#dead;
    this.destroy();
    if (!wasDead) this.#pool.forget(this);
    handler?.onError(error);
  }
}

/** A pool of connections to one instance: the raw client here, or undici's Pool through an adapter. */
export interface Upstream {
  /** It reads `headLines` when a request has them (the raw client; undici's Pool does not). */
  readonly takesHeadLines: boolean;
  dispatch(request: UpstreamRequest, handler: UpstreamHandler): boolean;
  /** Closes idle connections now and busy ones when their request ends. */
  close(): Promise<void>;
  /** Closes every connection now. */
  destroy(): Promise<void>;
}

export class RawUpstreamPool implements Upstream {
  readonly takesHeadLines = true;
  readonly #host: string;
  readonly #port: number;
  readonly #options: RawUpstreamOptions;
  readonly #idle: RawConnection[] = [];
  readonly #all = new Set<RawConnection>();
  #closed = false;
  #sweep: NodeJS.Timeout | undefined;
  /** Sent when a client's request had no Host header. */
  readonly hostHeader: string;

  constructor(url: string, options: RawUpstreamOptions) {
    const parsed = new URL(url);
    this.#host = parsed.hostname;
    this.#port = Number(parsed.port || 80);
    this.hostHeader = parsed.host;
    this.#options = options;
  }

  /**
   * One sweep over the pool's connections enforces every timeout; a deadline is met within a quarter of
   * the shortest timeout (at least 10 ms, at most 1 s) after it passes.
   */
  #startSweep(): void {
    if (this.#sweep !== undefined) return;
    const { keepAliveMs, connectTimeoutMs, headersTimeoutMs, bodyTimeoutMs } = this.#options;
    const shortest = Math.min(
      ...[keepAliveMs, connectTimeoutMs, headersTimeoutMs, bodyTimeoutMs].filter((ms) => ms > 0),
    );
    const everyMs = Math.max(10, Math.min(1000, Math.floor(shortest / 4)));
    this.#sweep = setInterval(() => {
      const nowMs = Date.now();
      for (const connection of this.#all) connection.expire(nowMs);
    }, everyMs);
    this.#sweep.unref();
  }

  #stopSweep(): void {
    if (this.#sweep !== undefined) clearInterval(this.#sweep);
    this.#sweep = undefined;
  }

  dispatch(request: UpstreamRequest, handler: UpstreamHandler): boolean {
    let connection: RawConnection | undefined;
    let nowMs = 0;
    while ((connection = this.#idle.pop()) !== undefined) {
      if (!connection.dead && !connection.idleExpired((nowMs ||= Date.now()))) break;
      connection.destroy();
      this.forget(connection);
    }
    if (connection === undefined) {
      connection = new RawConnection(this, this.#host, this.#port, this.#options.connectTimeoutMs);
      this.#all.add(connection);
      this.#startSweep();
    }
    connection.start(
      request,
      handler,
      this.#options.headersTimeoutMs,
      request.bodyTimeout ?? this.#options.bodyTimeoutMs,
    );
    return true;
  }

  /** @internal A connection finished its request and may be reused. */
  release(connection: RawConnection): void {
    if (this.#closed) {
      connection.destroy();
      this.forget(connection);
      return;
    }
    this.#idle.push(connection);
    connection.park(this.#options.keepAliveMs);
  }

  /** @internal A connection died. */
  forget(connection: RawConnection): void {
    this.#all.delete(connection);
    const index = this.#idle.indexOf(connection);
    if (index !== -1) this.#idle.splice(index, 1);
    if (this.#all.size === 0) this.#stopSweep();
  }

  /** Closes idle connections now and busy ones when their request ends. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const connection of this.#idle.splice(0)) {
      connection.destroy();
      this.#all.delete(connection);
    }
    if (this.#all.size === 0) this.#stopSweep();
  }

  /** Closes every connection now. */
  async destroy(): Promise<void> {
    this.#closed = true;
    for (const connection of this.#all) connection.destroy();
    this.#all.clear();
    this.#idle.length = 0;
    this.#stopSweep();
  }
}
