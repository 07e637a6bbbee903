/**
 * A webhook receiver for the end-to-end tests: a real HTTP server in the test process, on a port chosen
 * by the OS, that can be down, slow, failing (500), killed in the middle of a request, or fine. It checks
 * every request's Standard Webhooks signature itself, with node:crypto (not with boxoffice's signer),
 * and counts how many requests for one message id are in flight at once.
 */
import { createHmac, timingSafeEqual } from "node:crypto";
import http from "node:http";
import type { AddressInfo } from "node:net";

export type ReceiverMode = "slow" | "fail" | "kill" | "ok";

export interface Receipt {
  id: string;
  timestamp: number;
  body: string;
  validSignature: boolean;
  /** What the receiver answered: 200, 500, or null when it answered nothing (slow past the timeout, killed). */
  answered: number | null;
}

export class WebhookReceiver {
  readonly receipts: Receipt[] = [];
  /** The most requests for one webhook-id that were in flight at the same time. */
  maxInFlightPerId = 0;
  mode: ReceiverMode = "ok";
  /** How long "slow" waits before answering 200. */
  slowMs = 1500;
  #secret = "";
  #port = 0;
  #server: http.Server | null = null;
  readonly #inFlight = new Map<string, number>();

  /** Finds a free port and stays down until start(). */
  static async reserve(): Promise<WebhookReceiver> {
    const receiver = new WebhookReceiver();
    const probe = http.createServer();
    await new Promise<void>((resolve) => probe.listen(0, "127.0.0.1", resolve));
    receiver.#port = (probe.address() as AddressInfo).port;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}/hooks/boxoffice`;
  }

  set secret(secret: string) {
    this.#secret = secret;
  }

  /** How many requests arrived for `id` with a valid signature. */
  validFor(id: string): number {
    return this.receipts.filter((r) => r.id === id && r.validSignature).length;
  }

  async start(mode: ReceiverMode): Promise<void> {
    this.mode = mode;
    const server = http.createServer((request, response) => this.#handle(server, request, response));
    server.keepAliveTimeout = 1000;
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.#port, "127.0.0.1", () => resolve());
    });
    this.#server = server;
  }

  async stop(): Promise<void> {
    const server = this.#server;
    this.#server = null;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  #handle(server: http.Server, request: http.IncomingMessage, response: http.ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      const id = String(request.headers["webhook-id"] ?? "");
      const timestamp = String(request.headers["webhook-timestamp"] ?? "");
      const signature = String(request.headers["webhook-signature"] ?? "");
      const body = Buffer.concat(chunks).toString("utf8");
      const receipt: Receipt = {
        id,
        timestamp: Number(timestamp),
        body,
        validSignature: this.#verify(id, timestamp, signature, body),
        answered: null,
      };
      this.receipts.push(receipt);
      const inFlight = (this.#inFlight.get(id) ?? 0) + 1;
      this.#inFlight.set(id, inFlight);
      this.maxInFlightPerId = Math.max(this.maxInFlightPerId, inFlight);
      let done = false;
      const finish = () => {
        if (done) return;
        done = true;
        this.#inFlight.set(id, (this.#inFlight.get(id) ?? 1) - 1);
      };
      response.on("close", finish);
      const answer = (status: number) => {
        receipt.answered = status;
        response.writeHead(status, { "content-type": "text/plain" }).end(status === 200 ? "ok" : "no");
      };
      switch (this.mode) {
        case "ok":
          return answer(200);
        case "fail":
          return answer(500);
        case "slow": {
          const timer = setTimeout(() => {
            if (!response.destroyed) answer(200);
          }, this.slowMs);
          response.on("close", () => clearTimeout(timer));
          return;
        }
        case "kill":
          // Killed mid-delivery: the request is cut, the server goes away; it comes back fine later.
          this.mode = "ok";
          request.socket.destroy();
          finish();
          server.closeAllConnections();
          server.close();
          if (this.#server === server) this.#server = null;
          return;
      }
    });
  }

  /** The Standard Webhooks check, written out with node:crypto. */
  #verify(id: string, timestamp: string, signature: string, body: string): boolean {
    if (!this.#secret.startsWith("whsec_") || !/^\d+$/.test(timestamp)) return false;
    if (Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
    const key = Buffer.from(this.#secret.slice("whsec_".length), "base64");
    const expected = Buffer.from(
      `v1,${createHmac("sha256", key).update(`${id}.${timestamp}.${body}`).digest("base64")}`,
    );
    return signature.split(" ").some((candidate) => {
      const given = Buffer.from(candidate);
      return given.length === expected.length && timingSafeEqual(given, expected);
    });
  }
}
