/**
 * The balancer's access log: one JSON line per proxied request (the fields and termination flags are in
 * docs/operations.md), kept off the hot path. A request's line is made when it ends and appended to a
 * string; the lines gathered in one turn of the event loop are written together, asynchronously, by a
 * file stream (fs writes run on libuv's thread pool, so a slow disk never blocks the balancer). When the
 * disk is slower than the traffic, what waits (gathered plus not yet written) is bounded by
 * `maxBufferedBytes`: past it a line is dropped and counted (`boxoffice_lb_access_log_dropped_total`),
 * never waited for and never kept in memory.
 */
import { createWriteStream, type WriteStream } from "node:fs";

export interface AccessLogOptions {
  /** A file path (appended to), or "stdout". */
  destination: string;
  /** Share of requests logged, 0 to 1. */
  sampleRatio: number;
  /** Keep the query string in `path` (dropped by default: it may carry what should not be kept). */
  keepQuery: boolean;
  /** Most bytes waiting to be written; past it, lines are dropped and counted. */
  maxBufferedBytes: number;
}

/**
 * How a request ended, two characters like HAProxy's termination state: what ended it, then where it
 * was. Each is documented in docs/operations.md.
 */
export type Termination = "--" | `${"C" | "c" | "S" | "s" | "R" | "P" | "K"}${"Q" | "C" | "H" | "D"}`;

/** One line of the access log. Timings are milliseconds; -1 for a stage the request never reached. */
export interface AccessLogEntry {
  /** The request id passed to the instance (the client's X-Request-Id when it was safe, else made). */
  requestId: string;
  client: string;
  method: string;
  /** The request target, without its query unless `--access-log-query keep`. */
  path: string;
  /** The status sent to the client; -1 when none was (the client left first). */
  status: number;
  /** Request body bytes (buffered, or as announced by Content-Length when streamed; -1 unknown). */
  bytesIn: number;
  /** Response body bytes sent to the client. */
  bytesOut: number;
  /** The instance of the last attempt (its id and URL), or null when none was tried. */
  instance: string | null;
  instanceUrl: string | null;
  /** Attempts on instances: 2 or more when the request was sent again elsewhere. */
  attempts: number;
  /** Waited in the admission queue before an instance took it. */
  queueMs: number;
  /** From sending it to an instance to a connection being ready for it (the last attempt). */
  connectMs: number;
  /** From sending it to an instance to the response head (time to first byte, the last attempt). */
  responseMs: number;
  /** From the balancer having the whole head to the end of the exchange. */
  totalMs: number;
  termination: Termination;
}

const round = (ms: number): number => (ms < 0 ? -1 : Math.round(ms * 100) / 100);

export class AccessLog {
  readonly #stream: WriteStream;
  readonly #sampleRatio: number;
  readonly keepQuery: boolean;
  readonly #maxBufferedBytes: number;
  #pending = "";
  #flushScheduled = false;
  #closed = false;
  #closing: Promise<void> | undefined;
  /** Lines written (handed to the stream) and dropped since start. */
  written = 0;
  dropped = 0;

  constructor(options: AccessLogOptions) {
    this.#sampleRatio = options.sampleRatio;
    this.keepQuery = options.keepQuery;
    this.#maxBufferedBytes = options.maxBufferedBytes;
    // stdout through a file stream on fd 1, not process.stdout: on Linux a pipe makes process.stdout
    // write synchronously, which a slow reader would turn into a stalled balancer.
    this.#stream =
      options.destination === "stdout"
        ? createWriteStream("", { fd: 1, autoClose: false })
        : createWriteStream(options.destination, { flags: "a" });
    // A failing disk must not take the balancer down: the lines are lost and counted.
    this.#stream.on("error", () => {
      this.#closed = true;
    });
  }

  /** Whether this request is one to log (drawn once, when it arrives). */
  sampled(): boolean {
    return this.#sampleRatio >= 1 || (this.#sampleRatio > 0 && Math.random() < this.#sampleRatio);
  }

  /** The path as logged. */
  pathOf(url: string): string {
    if (this.keepQuery) return url;
    const query = url.indexOf("?");
    return query === -1 ? url : url.slice(0, query);
  }

  /** Queues one line; drops and counts it when too much already waits. */
  record(entry: AccessLogEntry): void {
    const line = JSON.stringify({
      time: new Date().toISOString(),
      requestId: entry.requestId,
      client: entry.client,
      method: entry.method,
      path: entry.path,
      status: entry.status,
      bytesIn: entry.bytesIn,
      bytesOut: entry.bytesOut,
      instance: entry.instance,
      instanceUrl: entry.instanceUrl,
      attempts: entry.attempts,
      queueMs: round(entry.queueMs),
      connectMs: round(entry.connectMs),
      responseMs: round(entry.responseMs),
      totalMs: round(entry.totalMs),
      termination: entry.termination,
    });
    if (
      this.#closed ||
      this.#pending.length + line.length + 1 + this.#stream.writableLength > this.#maxBufferedBytes
    ) {
      this.dropped++;
      return;
    }
    this.#pending += `${line}\n`;
    this.written++;
    if (!this.#flushScheduled) {
      this.#flushScheduled = true;
      setImmediate(this.#flush);
    }
  }

  readonly #flush = (): void => {
    this.#flushScheduled = false;
    if (this.#pending === "" || this.#closed) return;
    const chunk = this.#pending;
    this.#pending = "";
    this.#stream.write(chunk);
  };

  /** Writes what waits and closes the file (stdout is left open). Idempotent. */
  close(): Promise<void> {
    this.#closing ??= new Promise<void>((resolve) => {
      this.#flush();
      this.#closed = true;
      this.#stream.end(() => resolve());
    });
    return this.#closing;
  }
}
