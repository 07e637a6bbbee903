/**
 * The balancer's own HTTP/1.1 server side (`--front raw`): reads a client's request head just enough to
 * place it and writes responses as one string and the body, without Node's IncomingMessage/ServerResponse
 * machinery. What a head means (and every refusal: smuggling shapes, control bytes, bad Host, methods it
 * does not proxy) is decided by parseRequestHead (request-head.ts), held to llhttp by a differential
 * test. Here: heads bounded by `maxHeaderBytes` (431) and searched only in their new bytes, chunked
 * bodies with bounded trailers, slow clients cut off (`headersTimeoutMs`, `requestTimeoutMs`: 408),
 * clients that do not read cut off (`clientSendTimeoutMs`), idle keep-alive connections closed
 * (`clientKeepAliveMs`), `Expect: 100-continue` answered, and pipelined requests served one after
 * another, the next read only once the client has taken the answers before it.
 */
import { STATUS_CODES, type IncomingHttpHeaders, type OutgoingHttpHeaders } from "node:http";
import net, { type Socket } from "node:net";
import { Readable } from "node:stream";
import { refusalText } from "./balancer-errors.js";
import { clientIp } from "./client-ip.js";
import { ChunkedBodyError, ChunkedDecoder } from "./chunked-decoder.js";
import {
  PIPELINE_WRITE_BOUND_BYTES,
  SendWatch,
  type Front,
  type FrontOptions,
  type FrontRequest,
  type FrontResponse,
} from "./front.js";
import { HeadLines, type RequestLines } from "./head-lines.js";
import { BadRequest, parseRequestHead, type RequestHead } from "./request-head.js";

const CRLF_CRLF = Buffer.from("\r\n\r\n");
/**
 * Up to this size a body is written together with its head as one latin1 string (a lossless round trip
 * for any bytes): cheaper than corking a head and a buffer into one writev.
 */
export const ONE_WRITE_BYTES = 16 * 1024;

/**
 * A client's request. Its body stream is made only when someone reads it, so a request without a body
 * (most of them) costs no stream at all.
 */
export class RawRequest implements FrontRequest {
  readonly method: string;
  readonly url: string;
  readonly socket: Socket;
  readonly #head: string;
  readonly #headersStart: number;
  #rawHeaders: string[] | undefined;
  #headers: IncomingHttpHeaders | undefined;
  readonly #connection: FrontConnection;
  readonly #hasBody: boolean;
  /** The whole body, when it came in with the head: nothing left to read from the connection. */
  readonly completeBody: Buffer | undefined;
  readonly forwardLines: RequestLines;
  #body: Readable | undefined;
  #destroyed = false;

  constructor(connection: FrontConnection, text: string, head: RequestHead, completeBody?: Buffer) {
    this.#connection = connection;
    this.socket = connection.socket;
    this.method = head.method;
    this.url = head.url;
    this.#head = text;
    this.#headersStart = head.headersStart;
    this.forwardLines = head.forward;
    this.#hasBody = head.chunked || head.length > 0;
    this.completeBody = completeBody;
  }

  get destroyed(): boolean {
    return this.#destroyed;
  }

  /** Names as sent and values, alternating (read from the head on first use: most requests never ask). */
  get rawHeaders(): string[] {
    if (this.#rawHeaders === undefined) {
      const pairs: string[] = [];
      const lines = new HeadLines(this.#head, this.#headersStart);
      while (lines.next()) pairs.push(lines.name, lines.value);
      this.#rawHeaders = pairs;
    }
    return this.#rawHeaders;
  }

  /** Values by lower-case name, repeated headers joined with ", " (made on first use). */
  get headers(): IncomingHttpHeaders {
    if (this.#headers === undefined) {
      const headers: Record<string, string> = {};
      const pairs = this.rawHeaders;
      for (let index = 0; index < pairs.length; index += 2) {
        const lower = pairs[index]!.toLowerCase();
        const value = pairs[index + 1]!;
        headers[lower] = headers[lower] === undefined ? value : `${headers[lower]}, ${value}`;
      }
      this.#headers = headers;
    }
    return this.#headers;
  }

  #stream(): Readable {
    if (this.#body === undefined) {
      this.#body = new Readable({ read: () => this.#connection.resumeBody() });
      if (this.completeBody !== undefined) this.#body.push(this.completeBody);
      if (!this.#hasBody || this.completeBody !== undefined) this.#body.push(null);
    }
    return this.#body;
  }

  on(event: "data", listener: (chunk: Buffer) => void): this;
  on(event: "end", listener: () => void): this;
  on(event: "error", listener: (error: Error) => void): this;
  // The implementation signature is as loose as Readable's own (listener arguments vary by event).
  on(event: "data" | "end" | "error", listener: (...args: never[]) => void): this {
    this.#stream().on(event, listener as (...args: unknown[]) => void);
    return this;
  }

  off(event: "data", listener: (chunk: Buffer) => void): this;
  off(event: "end", listener: () => void): this;
  off(event: "error", listener: (error: Error) => void): this;
  off(event: "data" | "end" | "error", listener: (...args: never[]) => void): this {
    this.#stream().off(event, listener as (...args: unknown[]) => void);
    return this;
  }

  pause(): this {
    this.#stream().pause();
    return this;
  }

  [Symbol.asyncIterator](): AsyncIterator<unknown> {
    return this.#stream()[Symbol.asyncIterator]();
  }

  /** @internal Body bytes from the connection; `null` at the end. False: stop reading for now. */
  push(chunk: Buffer | null): boolean {
    return this.#stream().push(chunk);
  }

  destroy(): void {
    this.#destroyed = true;
    this.#body?.destroy();
  }
}

/**
 * A response to a client. Its "close" event means the client went away before the response ended (an
 * ended response does not emit it), and "drain" that a slow client took what was written; each is a plain
 * list of listeners, cheaper than an EventEmitter for the one or two a response ever has.
 */
export class RawResponse implements FrontResponse {
  readonly #connection: FrontConnection;
  readonly #headRequest: boolean;
  #head: string | undefined;
  #chunked = false;
  #noBody = false;
  headersSent = false;
  #finished = false;
  #onClose: (() => void)[] | undefined;
  #onDrain: (() => void)[] | undefined;

  constructor(connection: FrontConnection, headRequest: boolean) {
    this.#connection = connection;
    this.#headRequest = headRequest;
  }

  once(event: "close" | "drain", listener: () => void): this {
    if (event === "close") (this.#onClose ??= []).push(listener);
    else (this.#onDrain ??= []).push(listener);
    return this;
  }

  off(event: "close" | "drain", listener: () => void): this {
    const listeners = event === "close" ? this.#onClose : this.#onDrain;
    const index = listeners?.indexOf(listener) ?? -1;
    if (index !== -1) listeners!.splice(index, 1);
    return this;
  }

  /** @internal The client's socket drained. */
  drained(): void {
    const listeners = this.#onDrain;
    this.#onDrain = undefined;
    if (listeners !== undefined) for (const listener of listeners) listener();
  }

  get destroyed(): boolean {
    return this.#connection.socket.destroyed;
  }

  get finished(): boolean {
    return this.#finished;
  }

  writeHead(statusCode: number, headers: OutgoingHttpHeaders | string[] = {}): this {
    let lines = "";
    let hasLength = false;
    const add = (name: string, value: string) => {
      if (name.length === 14 && name.toLowerCase() === "content-length") hasLength = true;
      lines += `${name}: ${value}\r\n`;
    };
    if (Array.isArray(headers)) {
      for (let index = 0; index < headers.length; index += 2) add(headers[index]!, headers[index + 1]!);
    } else {
      for (const [name, value] of Object.entries(headers)) {
        if (value === undefined) continue;
        if (Array.isArray(value)) for (const each of value) add(name, String(each));
        else add(name, String(value));
      }
    }
    return this.writeHeadLines(statusCode, lines, hasLength);
  }

  /** The head from header lines ready to send (each ending in CRLF); `hasLength`: one is Content-Length. */
  writeHeadLines(statusCode: number, lines: string, hasLength: boolean): this {
    let head = `HTTP/1.1 ${statusCode} ${STATUS_CODES[statusCode] ?? "Unknown"}\r\n${lines}`;
    this.#noBody = this.#headRequest || statusCode === 204 || statusCode === 304 || statusCode < 200;
    if (!hasLength && !this.#noBody) {
      if (this.#connection.http11) {
        this.#chunked = true;
        head += "transfer-encoding: chunked\r\n";
      } else this.#connection.keepAlive = false; // an HTTP/1.0 client reads to the close
    }
    if (!this.#connection.keepAlive) head += "connection: close\r\n";
    this.#head = `${head}\r\n`;
    this.headersSent = true;
    return this;
  }

  write(chunk: Buffer): boolean {
    const socket = this.#connection.socket;
    if (socket.destroyed) return false;
    if (this.#head === undefined) this.writeHead(200);
    const head = this.#head!;
    this.#head = "";
    if (this.#noBody || chunk.length === 0) return head === "" || socket.write(head, "latin1");
    if (this.#chunked) {
      const size = `${chunk.length.toString(16)}\r\n`;
      if (chunk.length <= ONE_WRITE_BYTES)
        return socket.write(`${head}${size}${chunk.toString("latin1")}\r\n`, "latin1");
      socket.cork();
      socket.write(head + size, "latin1");
      socket.write(chunk);
      const more = socket.write("\r\n", "latin1");
      socket.uncork();
      return more;
    }
    if (head === "") return socket.write(chunk);
    // A small body goes out with the head as one string: one plain write instead of a corked writev.
    if (chunk.length <= ONE_WRITE_BYTES) return socket.write(head + chunk.toString("latin1"), "latin1");
    socket.cork();
    socket.write(head, "latin1");
    const more = socket.write(chunk);
    socket.uncork();
    return more;
  }

  writeBorrowed(chunk: Buffer): boolean {
    // A small chunk after the head, or any chunk over ONE_WRITE_BYTES, would be queued by reference if
    // the client is slow: those are copied. Every other small chunk leaves as part of a string.
    if (chunk.length > ONE_WRITE_BYTES || (this.#head === "" && !this.#chunked))
      return this.write(Buffer.from(chunk));
    return this.write(chunk);
  }

  end(body?: string | Buffer): this {
    if (this.#finished) return this;
    const socket = this.#connection.socket;
    if (this.#head === undefined) this.writeHead(200);
    if (!socket.destroyed) {
      if (body !== undefined && body.length > 0)
        this.write(typeof body === "string" ? Buffer.from(body) : body);
      // What is left: a head not yet written (no body), the last chunk of a chunked body.
      const rest = this.#head! + (this.#chunked && !this.#noBody ? "0\r\n\r\n" : "");
      this.#head = "";
      if (rest !== "") socket.write(rest, "latin1");
    }
    this.#finished = true;
    this.#onClose = undefined;
    this.#onDrain = undefined;
    this.#connection.responseEnded();
    return this;
  }

  destroy(): void {
    this.#connection.socket.destroy();
  }

  /** The client went away before the response ended. */
  clientClosed(): void {
    if (this.#finished) return;
    this.#finished = true;
    const listeners = this.#onClose;
    this.#onClose = undefined;
    this.#onDrain = undefined;
    if (listeners !== undefined) for (const listener of listeners) listener();
  }
}

/**
 * "waiting": a response ended but the client has not taken enough of what was written; the next
 * pipelined request waits for the socket to drain.
 */
type Phase = "idle" | "head" | "body" | "responding" | "waiting";

class FrontConnection {
  readonly socket: Socket;
  readonly #options: FrontOptions;
  #phase: Phase = "idle";
  /** Bytes read past the current request (a pipelined request), held until it is its turn. */
  #buffer: Buffer | undefined;
  /** A head not yet whole: its bytes so far in `#headBytes[0, #headLength)` (grown by doubling). */
  #headBytes: Buffer | undefined;
  #headLength = 0;
  /** When the current phase must be over (0: no limit), checked by the server's sweep. */
  deadlineAtMs = 0;
  #deadlineKind: "" | "408" = "";
  readonly #sendWatch = new SendWatch();
  #request: RawRequest | undefined;
  #response: RawResponse | undefined;
  #bodyRemaining = 0;
  #chunked: ChunkedDecoder | undefined;
  #requestStartedAtMs = 0;
  keepAlive = true;
  http11 = true;
  #clientIp: string | undefined;

  constructor(socket: Socket, options: FrontOptions) {
    this.socket = socket;
    this.#options = options;
    socket.setNoDelay(true);
    socket.on("data", (chunk: Buffer) => this.#onData(chunk));
    socket.on("error", () => socket.destroy());
    socket.on("close", () => {
      this.#clearTimer();
      this.#request?.destroy();
      this.#response?.clientClosed();
    });
    socket.on("drain", () => {
      this.#response?.drained();
      if (this.#phase === "waiting") this.#next();
    });
    // A new connection must send its first request head in time, like any request head.
    this.#arm(this.#options.headersTimeoutMs, "408");
  }

  /** Waiting for a next request (nothing in flight on this connection). */
  get idle(): boolean {
    return this.#phase === "idle";
  }

  /** The request body's reader wants more. */
  resumeBody(): void {
    if (this.#phase === "body") this.socket.resume();
  }

  responseEnded(): void {
    this.#response = undefined;
    if (this.#phase === "body") {
      // Answered before the body was read (a 503, an early error): the rest of the body is unread.
      this.keepAlive = false;
    }
    this.#request = undefined;
    if (!this.keepAlive) {
      this.socket.end();
      this.#clearTimer();
      return;
    }
    if (this.socket.writableLength > PIPELINE_WRITE_BOUND_BYTES) {
      // The client is not reading: read nothing more from it until it does (the "drain" listener).
      this.#phase = "waiting";
      this.#clearTimer();
      this.socket.pause();
      return;
    }
    this.#next();
  }

  /** Ready for the next request: the pipelined one already read, if any, else whatever comes. */
  #next(): void {
    this.#phase = "idle";
    this.#arm(this.#options.clientKeepAliveMs, "");
    this.socket.resume();
    const pending = this.#buffer;
    this.#buffer = undefined;
    if (pending !== undefined && pending.length > 0) this.#onData(pending);
  }

  // One sweep over all connections replaces a timer per request (createRawFrontServer).
  #arm(timeoutMs: number, kind: "" | "408"): void {
    this.deadlineAtMs = Date.now() + timeoutMs;
    this.#deadlineKind = kind;
  }

  #clearTimer(): void {
    this.deadlineAtMs = 0;
  }

  /** The deadline passed: an idle keep-alive connection is closed, a slow request gets 408. */
  expire(): void {
    this.deadlineAtMs = 0;
    if (this.#deadlineKind === "") this.socket.destroy();
    else this.#refuse(408, "request not received in time");
  }

  /** Cuts the client off when it has taken none of what waits for it for `clientSendTimeoutMs`. */
  checkSend(nowMs: number): boolean {
    if (!this.#sendWatch.stalled(this.socket, nowMs, this.#options.clientSendTimeoutMs)) return false;
    this.#options.onClientError("stalled");
    this.socket.destroy();
    return true;
  }

  #onData(chunk: Buffer): void {
    switch (this.#phase) {
      case "responding":
      case "waiting":
        // A pipelined request: kept until the current response has ended and the client has read it.
        this.#buffer = this.#buffer === undefined ? chunk : Buffer.concat([this.#buffer, chunk]);
        if (this.#buffer.length > this.#options.maxHeaderBytes) this.socket.pause();
        return;
      case "body":
        this.#onBody(chunk);
        return;
      case "idle": {
        // llhttp skips CR and LF bytes before a request (RFC 9112 2.2: empty lines); so does the front.
        let start = 0;
        while (chunk[start] === 13 || chunk[start] === 10) start++;
        if (start === chunk.length) return;
        this.#phase = "head";
        this.#requestStartedAtMs = Date.now();
        this.#arm(this.#options.headersTimeoutMs, "408");
        this.#onHead(start === 0 ? chunk : chunk.subarray(start));
        return;
      }
      case "head":
        this.#onHead(chunk);
        return;
    }
  }

  #onHead(chunk: Buffer): void {
    let data: Buffer;
    let end: number;
    if (this.#headBytes === undefined) {
      // The usual case: the whole head in one read.
      data = chunk;
      end = chunk.indexOf(CRLF_CRLF);
      if (end === -1) {
        if (chunk.length > this.#options.maxHeaderBytes) return this.#refuse(431, "request head too large");
        this.#headBytes = Buffer.allocUnsafe(Math.max(1024, chunk.length * 2));
        chunk.copy(this.#headBytes);
        this.#headLength = chunk.length;
        return;
      }
    } else {
      // A head in pieces: only the new bytes (and the three before them) are searched for its end, and
      // the pieces are copied into one buffer grown by doubling, so a head trickled byte by byte costs
      // no more than one sent at once.
      const from = Math.max(0, this.#headLength - 3);
      const length = this.#headLength + chunk.length;
      if (length > this.#headBytes.length) {
        const grown = Buffer.allocUnsafe(Math.max(length, this.#headBytes.length * 2));
        this.#headBytes.copy(grown, 0, 0, this.#headLength);
        this.#headBytes = grown;
      }
      chunk.copy(this.#headBytes, this.#headLength);
      this.#headLength = length;
      data = this.#headBytes.subarray(0, length);
      end = data.indexOf(CRLF_CRLF, from);
      if (end === -1) {
        if (length > this.#options.maxHeaderBytes) return this.#refuse(431, "request head too large");
        return;
      }
      // The buffer now belongs to this request (its body may be a slice of it).
      this.#headBytes = undefined;
      this.#headLength = 0;
    }
    if (end > this.#options.maxHeaderBytes) return this.#refuse(431, "request head too large");
    const text = data.toString("latin1", 0, end);
    let parsed: RequestHead;
    try {
      parsed = parseRequestHead(text, (this.#clientIp ??= clientIp(this)));
    } catch (error) {
      if (error instanceof BadRequest) return this.#refuse(error.status, error.message);
      throw error;
    }
    this.http11 = parsed.http11;
    this.keepAlive = parsed.keepAlive;
    const hasBody = parsed.chunked || parsed.length > 0;
    let rest = data.subarray(end + 4);
    // Most bodies (small JSON) come in the same read as their head: then the request carries the whole
    // body, and no stream is made for it.
    let completeBody: Buffer | undefined;
    if (!parsed.chunked && parsed.length > 0 && rest.length >= parsed.length) {
      completeBody = rest.subarray(0, parsed.length);
      rest = rest.subarray(parsed.length);
    }
    const request = new RawRequest(this, text, parsed, completeBody);
    const response = new RawResponse(this, parsed.method === "HEAD");
    this.#request = request;
    this.#response = response;
    if (hasBody && completeBody === undefined) {
      this.#phase = "body";
      this.#chunked = parsed.chunked ? new ChunkedDecoder(this.#options.maxHeaderBytes) : undefined;
      this.#bodyRemaining = parsed.length;
      const leftMs = this.#options.requestTimeoutMs - (Date.now() - this.#requestStartedAtMs);
      this.#arm(Math.max(1, leftMs), "408");
      if (parsed.expectsContinue) this.socket.write("HTTP/1.1 100 Continue\r\n\r\n");
      this.#options.onRequest(request, response);
      if (rest.length > 0 && this.#phase === "body") this.#onBody(rest);
    } else {
      this.#phase = "responding";
      this.#clearTimer();
      if (rest.length > 0) this.#buffer = rest;
      this.#options.onRequest(request, response);
    }
  }

  #onBody(chunk: Buffer): void {
    const request = this.#request;
    if (request === undefined) return;
    let more = true;
    let rest: Buffer | undefined;
    if (this.#chunked !== undefined) {
      let end: number;
      try {
        end = this.#chunked.feed(chunk, (data) => {
          more = request.push(data) && more;
        });
      } catch (error) {
        if (!(error instanceof ChunkedBodyError)) throw error;
        request.destroy();
        return this.#refuse(error.tooLarge ? 431 : 400, error.message);
      }
      if (end !== -1) rest = chunk.subarray(end);
      else if (!more) this.socket.pause();
      if (end === -1) return;
    } else {
      const take = Math.min(this.#bodyRemaining, chunk.length);
      more = request.push(take === chunk.length ? chunk : chunk.subarray(0, take));
      this.#bodyRemaining -= take;
      if (take < chunk.length) rest = chunk.subarray(take);
      if (this.#bodyRemaining > 0) {
        if (!more) this.socket.pause();
        return;
      }
    }
    // The whole body is in.
    request.push(null);
    this.#clearTimer();
    this.#phase = "responding";
    if (rest !== undefined && rest.length > 0) this.#buffer = rest;
  }

  #refuse(status: 400 | 408 | 431 | 501, reason: string): void {
    this.#options.onClientError(String(status));
    this.#clearTimer();
    this.#headBytes = undefined;
    this.#buffer = undefined;
    if (this.#response !== undefined && this.#response.headersSent) {
      this.socket.destroy();
      return;
    }
    this.socket.end(refusalText(status, reason), "latin1");
    this.#phase = "responding";
    this.keepAlive = false;
    setTimeout(() => this.socket.destroy(), 1000).unref();
  }
}

export function createRawFrontServer(options: FrontOptions): Front {
  const connections = new Set<FrontConnection>();
  const server = net.createServer((socket) => {
    const connection = new FrontConnection(socket, options);
    connections.add(connection);
    socket.once("close", () => connections.delete(connection));
  });
  server.maxConnections = options.maxClientConnections;
  const checkEveryMs = Math.max(
    50,
    Math.min(1000, Math.floor(Math.min(options.headersTimeoutMs, options.clientSendTimeoutMs) / 4)),
  );
  const sweep = setInterval(() => {
    const nowMs = Date.now();
    for (const connection of connections) {
      if (connection.checkSend(nowMs)) continue;
      if (connection.deadlineAtMs !== 0 && connection.deadlineAtMs <= nowMs) connection.expire();
    }
  }, checkEveryMs);
  sweep.unref();
  server.once("close", () => clearInterval(sweep));
  return {
    server,
    closeIdleConnections: () => {
      for (const connection of connections) if (connection.idle) connection.socket.destroy();
    },
    closeAllConnections: () => {
      for (const connection of connections) connection.socket.destroy();
    },
  };
}
