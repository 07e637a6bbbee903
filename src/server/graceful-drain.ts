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
 * So the drain goes in two steps:
 * 1. keep listening and keep the open connections, but every answer from now on carries
 *    `Connection: close`, so each client moves on to another instance after its answer (the readiness
 *    probe reports the drain, so a balancer sends no new connection);
 * 2. once nothing is in flight and no request or connection has begun for `quietMs` (the event loop has
 *    accepted and read whatever was waiting), stop listening, close the idle connections and wait for
 *    the rest to end.
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
const POLL_MS = 10;

export class GracefulDrain {
  readonly #server: Server;
  readonly #quietMs: number;
  #inFlight = 0;
  /** When the last request or connection began (performance.now()). */
  #lastActivityAt = 0;
  #draining = false;

  constructor(server: Server, quietMs = DRAIN_QUIET_MS) {
    this.#server = server;
    this.#quietMs = quietMs;
    // Before Fastify's own listener, so that the header is there before any answer is written.
    server.prependListener("request", (request: IncomingMessage, response: ServerResponse) => {
      this.#inFlight += 1;
      this.#lastActivityAt = performance.now();
      response.once("close", () => (this.#inFlight -= 1));
      if (this.#draining && request.httpVersionMajor === 1) response.setHeader("Connection", "close");
    });
    server.on("connection", () => (this.#lastActivityAt = performance.now()));
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
    const deadline = performance.now() + timeoutMs;
    this.#draining = true;
    const server = this.#server;
    if (!server.listening) return;
    this.#lastActivityAt = Math.max(this.#lastActivityAt, performance.now());
    while (performance.now() < deadline) {
      if (this.#inFlight === 0 && performance.now() - this.#lastActivityAt >= this.#quietMs) break;
      await sleep(POLL_MS);
    }
    const ended = once(server, "close");
    // net's close, not http's: it stops listening and leaves the open connections alone.
    NetServer.prototype.close.call(server);
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
