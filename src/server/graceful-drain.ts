/**
 * Stops an HTTP server without dropping a request a client has already sent.
 *
 * `http.Server.close()` (Node 19 and later, and Fastify's close) closes every idle keep-alive connection
 * at once. A connection whose next request is still waiting in the kernel's buffer, because the busy
 * instance has not read it yet, counts as idle too: that request would be cut off unanswered. So the
 * drain goes in two steps:
 * 1. stop accepting new connections but keep the open ones; every answer from now on carries
 *    `Connection: close`, so each client moves on to another instance after its answer;
 * 2. once nothing is in flight and no request has begun for `quietMs` (the event loop has read whatever
 *    was waiting), close the idle connections and wait for the rest to end.
 * Past the deadline every connection is cut. A client can still send on an idle connection at the very
 * moment it is closed: that race is HTTP keep-alive's own, and the balancer retries what is safe to retry.
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
  #lastRequestAt = 0;
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
    const ended = once(server, "close");
    // net's close, not http's: it stops accepting and leaves the open connections alone.
    NetServer.prototype.close.call(server);
    this.#lastRequestAt = Math.max(this.#lastRequestAt, performance.now());
    while (performance.now() < deadline) {
      if (this.#inFlight === 0 && performance.now() - this.#lastRequestAt >= this.#quietMs) break;
      await sleep(POLL_MS);
    }
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
