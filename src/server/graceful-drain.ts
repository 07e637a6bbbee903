/**
 * Stops an HTTP server without dropping a request a client has already sent.
 *
 * `http.Server.close()` (Node 19 and later, and Fastify's close) stops listening and closes every idle
 * keep-alive connection at once. Two kinds of sent request would be cut off unanswered:
 * - one waiting in the kernel's buffer of an open connection that the busy instance has not read yet
 *   (the connection counts as idle);
 * - one on a connection still in the kernel's accept queue: Node accepts one connection per turn of the
 *   event loop, and a turn of a busy instance takes a commit (5 ms here; 32 new connections waited up to
 *   260 ms), and closing the listening socket resets every connection still queued.
 * So the drain goes in three steps:
 * 1. keep the open connections, but every answer from now on carries `Connection: close`, so each client
 *    moves on to another instance after its answer (the readiness probe reports the drain, so a
 *    balancer sends no new connection);
 * 2. keep listening until no connection has been accepted for `quietMs` (the queue is empty), but at most
 *    LISTEN_GRACE_MS: a balancer that has not yet seen the drain, or a client that keeps connecting,
 *    must not keep the instance taking new work until the deadline cuts it off; what connects after
 *    that is refused and goes elsewhere, as a closed port always was;
 * 3. once nothing is in flight and no request has begun for `quietMs` (the event loop has read
 *    whatever was waiting), close the idle connections and wait for the rest to end.
 * Past the deadline every connection is cut. A client can still send on an idle connection, or connect,
 * at the very moment it is closed: that race is HTTP keep-alive's own, and the balancer retries what is
 * safe to retry.
 */
import { once } from "node:events";
import type { IncomingMessage, Server, ServerResponse } from "node:http";
import { Server as NetServer } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/** How long no request may begin before the idle connections are taken to hold nothing unread. */
export const DRAIN_QUIET_MS = 100;
/** The longest a draining instance keeps accepting connections (step 2 above). */
export const LISTEN_GRACE_MS = 1000;
const POLL_MS = 10;

export class GracefulDrain {
  readonly #server: Server;
  readonly #quietMs: number;
  #inFlight = 0;
  /** When the last request began (performance.now()). */
  #lastRequestAt = 0;
  /** When the last connection was accepted (performance.now()). */
  #lastConnectionAt = 0;
  #draining = false;

  constructor(server: Server, quietMs = DRAIN_QUIET_MS) {
    this.#server = server;
    this.#quietMs = quietMs;
    // Before Fastify's own listener, so that the header is there before any answer is written.
    server.prependListener("request", (request: IncomingMessage, response: ServerResponse) => {
      this.#inFlight += 1;
      this.#lastRequestAt = performance.now();
      response.once("close", () => (this.#inFlight -= 1));
      if (this.#draining && request.httpVersionMajor === 1) response.setHeader("Connection", "close");
    });
    server.on("connection", () => (this.#lastConnectionAt = performance.now()));
  }

  /** True from the start of the drain: a readiness probe may report the instance as going away. */
  get draining(): boolean {
    return this.#draining;
  }

  /**
   * Runs the drain; resolves when every connection has ended (or was cut at the deadline). The caller
   * closes the app afterwards, which then finds nothing open.
   */
  async drain(timeoutMs: number): Promise<void> {
    const startedAt = performance.now();
    const deadline = startedAt + timeoutMs;
    this.#draining = true;
    const server = this.#server;
    if (!server.listening) return;
    const ended = once(server, "close");
    let listening = true;
    const quiet = (since: number) => performance.now() - Math.max(since, startedAt) >= this.#quietMs;
    while (performance.now() < deadline) {
      if (listening && (quiet(this.#lastConnectionAt) || performance.now() - startedAt >= LISTEN_GRACE_MS)) {
        // net's close, not http's: it stops listening and leaves the open connections alone.
        NetServer.prototype.close.call(server);
        listening = false;
      }
      if (!listening && this.#inFlight === 0 && quiet(this.#lastRequestAt)) break;
      await sleep(POLL_MS);
    }
    if (listening) NetServer.prototype.close.call(server);
    server.closeIdleConnections();
    const left = deadline - performance.now();
    const cut = setTimeout(() => server.closeAllConnections(), Math.max(0, left));
    try {
      await ended;
    } finally {
      clearTimeout(cut);
    }
  }
}
