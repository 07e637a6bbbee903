/**
 * A front is the server side clients talk to (raw-front.ts or node-front.ts, chosen by create-front.ts):
 * what it is given, what it hands the balancer, and what both fronts share. The balancer needs of a
 * client's request and response only FrontRequest and FrontResponse: Node's IncomingMessage and
 * ServerResponse have them; so do the raw front's RawRequest and RawResponse.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import type { Server } from "node:net";
import type { RequestLines } from "./head-lines.js";

/**
 * A pipelined request is read only once the responses before it are down to this many bytes waiting in
 * the socket: a client that sends requests and reads nothing makes the balancer hold no more than this
 * (plus one response being streamed, bounded by the socket's own high-water mark).
 */
export const PIPELINE_WRITE_BOUND_BYTES = 64 * 1024;

/** What a front (raw-front.ts, node-front.ts) is given: its limits, and where requests and refusals go. */
export interface FrontOptions {
  maxHeaderBytes: number;
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  clientKeepAliveMs: number;
  /**
   * A client with a response waiting to be written that takes none of it for this long is cut off
   * (nothing a client sends turns it off: server-sent events included).
   */
  clientSendTimeoutMs: number;
  maxClientConnections: number;
  onRequest(req: FrontRequest, res: FrontResponse): void;
  /** A client turned away: "400", "408", "431", "501", "reset", or "stalled" (cut off for not reading). */
  onClientError(kind: string): void;
}

/** A front's server (`listen()` it like any net.Server) and its connections, for shutdown. */
export interface Front {
  readonly server: Server;
  /** Closes the connections waiting for a next request. */
  closeIdleConnections(): void;
  closeAllConnections(): void;
}

export interface FrontRequest extends AsyncIterable<unknown> {
  readonly method?: string | undefined;
  readonly url?: string | undefined;
  /** Header names as sent and values, alternating. */
  readonly rawHeaders: string[];
  /** Header values by lower-case name. */
  readonly headers: IncomingHttpHeaders;
  readonly socket: { readonly remoteAddress?: string | undefined };
  readonly destroyed: boolean;
  /** The whole body when it came in with the head (the raw front); there is then nothing to read. */
  readonly completeBody?: Buffer | undefined;
  /**
   * The header lines to pass on to an instance and what the balancer may act on, decided by the front
   * (parseRequestHead, request-head.ts) for every request: a header the client named in Connection is
   * neither in the lines nor behind any flag (an Idempotency-Key so named does not make a POST
   * retryable).
   */
  readonly forwardLines: RequestLines;
  on(event: "data", listener: (chunk: Buffer) => void): this;
  on(event: "end", listener: () => void): this;
  on(event: "error", listener: (error: Error) => void): this;
  off(event: "data", listener: (chunk: Buffer) => void): this;
  off(event: "end", listener: () => void): this;
  off(event: "error", listener: (error: Error) => void): this;
  pause(): this;
}

export interface FrontResponse {
  readonly headersSent: boolean;
  readonly destroyed: boolean;
  /** `headers`: an object, or names and values alternating in one array. */
  writeHead(statusCode: number, headers?: OutgoingHttpHeaders | string[]): this;
  /**
   * Optional (the raw front has it): the head from header lines ready to send, each ending in CRLF;
   * `hasLength`: one of them is Content-Length.
   */
  writeHeadLines?(statusCode: number, lines: string, hasLength: boolean): this;
  /** False when the client is slow: wait for "drain". */
  write(chunk: Buffer): boolean;
  /**
   * Optional (the raw front has it): `write` for a chunk the caller reuses right after the call; nothing
   * of it is kept by reference.
   */
  writeBorrowed?(chunk: Buffer): boolean;
  end(body?: string | Buffer): this;
  destroy(): void;
  /**
   * "close": the client went away before the response ended (Node's ServerResponse emits it after a
   * normal end too, so a listener must tell the two apart). "drain": a slow client took what was written.
   */
  once(event: "close" | "drain", listener: () => void): this;
  off(event: "close" | "drain", listener: () => void): this;
}

/**
 * Tells a client that does not read its response: bytes wait in its socket and none of them has been
 * taken since `timeoutMs` ago. Checked by a periodic sweep, so it costs nothing per write; it reads the
 * bytes the kernel took (written minus still waiting), which any read by the client moves on.
 */
export class SendWatch {
  #progressAtMs = 0;
  #flushed = -1;

  /** True when `socket` has had bytes waiting and taken none of them for `timeoutMs`. */
  stalled(
    socket: { readonly bytesWritten: number; readonly writableLength: number },
    nowMs: number,
    timeoutMs: number,
  ): boolean {
    const waiting = socket.writableLength;
    const flushed = socket.bytesWritten - waiting;
    if (waiting === 0 || flushed !== this.#flushed) {
      this.#flushed = flushed;
      this.#progressAtMs = nowMs;
      return false;
    }
    return nowMs - this.#progressAtMs >= timeoutMs;
  }
}
