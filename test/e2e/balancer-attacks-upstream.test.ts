/**
 * Attacks on the balancer's side facing the instances, with raw sockets against the real balancer and a
 * real boxoffice instance, for every front (raw, node) and upstream client (raw, undici):
 * - request smuggling through an upstream connection put back mid-body (a POST larger than the balancer
 *   buffers, answered by the instance before it read the body): another client's `GET /health` must get
 *   the health answer, promptly, whatever the attacker hid in the rest of its body;
 * - client-caused failures (a body over the instance's limit, a header undici refuses, CONNECT, a client
 *   that goes away) never count against the instance: it stays up, with no failure recorded, and sells;
 * - a client that reads nothing holds an upstream slot no longer than the bound, even for server-sent
 *   events, and the instance is told to wait instead of filling the balancer's memory.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import {
  spawnBalancer,
  spawnRealInstance,
  type RealInstance,
  type SpawnedBalancer,
} from "../support/backend-fixture.js";

const TOKEN = "balancer-attacks-admin-token";
const auth = { authorization: `Bearer ${TOKEN}` };
/** Longer than the balancer buffers (64 KiB): the body is streamed to the instance. */
const PADDING = 70_000;
/** A response bound for the tests: far longer than any answer here takes. */
const ANSWER_MS = 5000;

interface Answer {
  status: number;
  head: string;
  body: string;
}

/** Reads HTTP/1.1 responses off one socket, one at a time, as raw text. */
class RawClient {
  readonly socket: net.Socket;
  #data = Buffer.alloc(0);
  #ended = false;
  #wake: (() => void) | undefined;

  private constructor(socket: net.Socket) {
    this.socket = socket;
    socket.on("data", (chunk: Buffer) => {
      this.#data = Buffer.concat([this.#data, chunk]);
      this.#wake?.();
    });
    const end = () => {
      this.#ended = true;
      this.#wake?.();
    };
    socket.on("end", end);
    socket.on("close", end);
    socket.on("error", end);
  }

  /** `allowHalfOpen`: keep writing after the balancer ended its side (an attacker's body goes on). */
  static connect(port: number, allowHalfOpen = false): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ port, host: "127.0.0.1", allowHalfOpen });
      socket.once("connect", () => resolve(new RawClient(socket)));
      socket.once("error", reject);
    });
  }

  write(data: string | Buffer): void {
    if (!this.socket.destroyed && this.socket.writable)
      this.socket.write(typeof data === "string" ? Buffer.from(data, "latin1") : data);
  }

  get ended(): boolean {
    return this.#ended;
  }

  async #more(deadlineAtMs: number): Promise<boolean> {
    if (this.#ended) return false;
    const leftMs = deadlineAtMs - Date.now();
    if (leftMs <= 0) return false;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, leftMs);
      this.#wake = () => {
        clearTimeout(timer);
        this.#wake = undefined;
        resolve();
      };
    });
    return true;
  }

  /** The next whole response (content-length, chunked or to the close); undefined if none came in time. */
  async next(timeoutMs = ANSWER_MS): Promise<Answer | undefined> {
    const deadlineAtMs = Date.now() + timeoutMs;
    for (;;) {
      const answer = this.#take();
      if (answer !== undefined) return answer;
      if (!(await this.#more(deadlineAtMs))) return this.#ended ? this.#takeToClose() : undefined;
    }
  }

  #take(): Answer | undefined {
    const end = this.#data.indexOf("\r\n\r\n");
    if (end === -1) return undefined;
    const head = this.#data.toString("latin1", 0, end);
    const status = Number(head.slice(9, 12));
    if (status >= 100 && status < 200) {
      this.#data = this.#data.subarray(end + 4);
      return this.#take();
    }
    const length = /\r\ncontent-length: *(\d+)/i.exec(head);
    if (length !== null) {
      const total = end + 4 + Number(length[1]);
      if (this.#data.length < total) return undefined;
      const body = this.#data.toString("latin1", end + 4, total);
      this.#data = this.#data.subarray(total);
      return { status, head, body };
    }
    if (/\r\ntransfer-encoding: *chunked/i.test(head)) {
      let at = end + 4;
      let body = "";
      for (;;) {
        const lineEnd = this.#data.indexOf("\r\n", at);
        if (lineEnd === -1) return undefined;
        const size = parseInt(this.#data.toString("latin1", at, lineEnd), 16);
        if (size === 0) {
          const close = this.#data.indexOf("\r\n\r\n", lineEnd);
          if (close === -1) return undefined;
          this.#data = this.#data.subarray(close + 4);
          return { status, head, body };
        }
        if (this.#data.length < lineEnd + 2 + size + 2) return undefined;
        body += this.#data.toString("latin1", lineEnd + 2, lineEnd + 2 + size);
        at = lineEnd + 2 + size + 2;
      }
    }
    return undefined; // to the close
  }

  #takeToClose(): Answer | undefined {
    const end = this.#data.indexOf("\r\n\r\n");
    if (end === -1) return undefined;
    const head = this.#data.toString("latin1", 0, end);
    const body = this.#data.toString("latin1", end + 4);
    this.#data = Buffer.alloc(0);
    return { status: Number(head.slice(9, 12)), head, body };
  }

  close(): void {
    this.socket.destroy();
  }
}

interface BackendFigures {
  id: string;
  state: string;
  active: number;
  failures: number;
  ejections: number;
}

async function backends(balancer: SpawnedBalancer): Promise<BackendFigures[]> {
  const response = await request(`${balancer.url}/_lb/backends`, { headers: auth });
  assert.equal(response.statusCode, 200);
  return ((await response.body.json()) as { backends: BackendFigures[] }).backends;
}

/** Every instance up, none ever ejected, no failure recorded, nothing in flight; /_lb/health says 200. */
async function assertUntouched(balancer: SpawnedBalancer, what: string): Promise<void> {
  assert.equal(balancer.child.exitCode, null, `${what}: the balancer exited: ${balancer.stderr()}`);
  let figures: BackendFigures[] = [];
  // In-flight counts settle once the balancer has seen the last connections close.
  for (let attempt = 0; attempt < 100; attempt++) {
    figures = await backends(balancer);
    if (figures.every((backend) => backend.active === 0)) break;
    await sleep(50);
  }
  for (const backend of figures) {
    assert.equal(backend.state, "up", `${what}: ${backend.id} is ${backend.state}`);
    assert.equal(backend.ejections, 0, `${what}: ${backend.id} was ejected`);
    assert.equal(backend.failures, 0, `${what}: ${backend.id} has failures counted against it`);
    assert.equal(backend.active, 0, `${what}: ${backend.id} still has a request in flight`);
  }
  const health = await request(`${balancer.url}/_lb/health`);
  assert.equal(health.statusCode, 200, `${what}: /_lb/health says ${await health.body.text()}`);
  await health.body.dump();
}

/**
 * The victim's request, hidden at the end of the attacker's body: the instance would parse it as the
 * next request if the rest of the body followed someone else's request on the same connection. The
 * line breaks in front are skipped by an HTTP/1.1 parser before a request line, so the hidden request
 * is read whatever the length of the request in between.
 */
const HIDDEN = `${"\r\n".repeat(300)}GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n`;

const COMBINATIONS = [
  { front: "raw", upstreamClient: "raw" },
  { front: "raw", upstreamClient: "undici" },
  { front: "node", upstreamClient: "raw" },
  { front: "node", upstreamClient: "undici" },
];

describe("balancer attacks on the upstream side", () => {
  let dataDir: string;
  let instance: RealInstance;
  let eventId: string;

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "boxoffice-lb-attacks-"));
    instance = await spawnRealInstance("s1", dataDir, TOKEN);
    const created = await request(`${instance.url}/v1/events`, {
      method: "POST",
      headers: { ...auth, "content-type": "application/json" },
      body: JSON.stringify({ name: "Attack test", capacity: 1000 }),
    });
    const text = await created.body.text();
    assert.equal(created.statusCode, 201, text);
    eventId = (JSON.parse(text) as { id: string }).id;
  });

  after(async () => {
    await instance?.kill();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  for (const { front, upstreamClient } of COMBINATIONS) {
    describe(`${front} front, ${upstreamClient} client`, () => {
      let balancer: SpawnedBalancer;

      before(async () => {
        balancer = await spawnBalancer(
          [
            ...["--backend", instance.url, "--front", front, "--upstream-client", upstreamClient],
            // Health checks rarely: an instance taken down by a request would stay down for the checks.
            ...["--health-interval-ms", "60000"],
          ],
          { BOXOFFICE_ADMIN_TOKEN: TOKEN },
        );
      });

      after(async () => {
        if (balancer !== undefined && balancer.child.exitCode !== null)
          console.log(`# the balancer exited (${balancer.child.exitCode}): ${balancer.stderr()}`);
        await balancer?.stop();
      });

      /**
       * The attacker's POST, answered early by the instance (`status`), then a victim's GET /health, then
       * the rest of the attacker's body: the victim must get the health answer.
       */
      async function smuggle(target: string, headers: string, status: number, chunked: boolean) {
        const attacker = await RawClient.connect(balancer.port, true);
        const padding = "a".repeat(PADDING);
        if (chunked) {
          attacker.write(
            `POST ${target} HTTP/1.1\r\nHost: x\r\n${headers}Transfer-Encoding: chunked\r\n\r\n` +
              `${padding.length.toString(16)}\r\n${padding}\r\n`,
          );
        } else {
          attacker.write(
            `POST ${target} HTTP/1.1\r\nHost: x\r\n${headers}` +
              `Content-Length: ${padding.length + HIDDEN.length}\r\n\r\n${padding}`,
          );
        }
        const early = await attacker.next();
        assert.equal(early?.status, status, `the attacker's early answer: ${early?.head}`);

        const victim = await RawClient.connect(balancer.port);
        victim.write("GET /health HTTP/1.1\r\nHost: x\r\n\r\n");
        // Let the balancer place the victim's request before the rest of the attacker's body arrives.
        await sleep(150);
        attacker.write(chunked ? `${HIDDEN.length.toString(16)}\r\n${HIDDEN}\r\n0\r\n\r\n` : HIDDEN);
        const answer = await victim.next();
        attacker.close();
        victim.close();
        assert.ok(answer !== undefined, "the victim's GET /health got no answer in time");
        assert.equal(answer.status, 200, `the victim got ${answer.head}\n${answer.body}`);
        assert.deepEqual(JSON.parse(answer.body), { status: "ok" });
      }

      it("answers a victim's GET /health with the health answer after a smuggling probe (401 before the body)", async () => {
        await smuggle("/v1/events", "Content-Type: application/json\r\n", 401, false);
        await smuggle("/v1/events", "Content-Type: application/json\r\n", 401, true);
        await assertUntouched(balancer, "after the 401 probes");
      });

      it("answers a victim's GET /health with the health answer after a smuggling probe (415 before the body)", async () => {
        await smuggle(`/v1/events/${eventId}/orders`, "Content-Type: text/plain\r\n", 415, false);
        await smuggle(`/v1/events/${eventId}/orders`, "Content-Type: text/plain\r\n", 415, true);
        await assertUntouched(balancer, "after the 415 probes");
      });

      it("passes on the instance's 413 for a body over its limit and keeps the instance up", async () => {
        const big = Buffer.alloc(4 * 1024 * 1024, "a");
        for (let round = 0; round < 3; round++) {
          const client = await RawClient.connect(balancer.port);
          client.socket.on("error", () => undefined);
          client.write(
            `POST /v1/events/${eventId}/orders HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n` +
              `Content-Length: ${big.length}\r\n\r\n`,
          );
          client.write(big);
          const answer = await client.next(10_000);
          client.close();
          // The instance's own answer when it arrived before it closed, else the balancer's 4xx.
          assert.ok(answer !== undefined, "no answer to the oversized POST");
          assert.ok(answer.status >= 400 && answer.status < 500, `${answer.head}\n${answer.body}`);
        }
        await assertUntouched(balancer, "after three 4 MiB POSTs");
      });

      it("refuses CONNECT and a header the upstream client refuses, without counting them", async () => {
        const connect = await RawClient.connect(balancer.port);
        connect.write(
          `CONNECT ${new URL(instance.url).host} HTTP/1.1\r\nHost: ${new URL(instance.url).host}\r\n\r\n`,
        );
        const refused = await connect.next();
        connect.close();
        // The balancer's refusal, or the node front's: the connection closed without an answer.
        if (refused !== undefined) assert.ok(refused.status >= 400 && refused.status < 600, refused.head);

        for (const bad of ["X-Bad: a\x01b", "X-Bad: a\x7fb"]) {
          const client = await RawClient.connect(balancer.port);
          client.write(`GET /health HTTP/1.1\r\nHost: x\r\n${bad}\r\n\r\n`);
          const answer = await client.next();
          client.close();
          // Refused by the front, by undici before sending, or by the instance: 400 all the same.
          assert.equal(answer?.status, 400, `${JSON.stringify(bad)}: ${answer?.head}`);
        }
        await assertUntouched(balancer, "after CONNECT and control bytes");
      });

      it("sells normally after the probes", async () => {
        const bought = await request(`${balancer.url}/v1/events/${eventId}/orders`, {
          method: "POST",
          headers: {
            "content-type": "application/json",
            "idempotency-key": `after-${front}-${upstreamClient}`,
          },
          body: JSON.stringify({ customerId: "c-after", quantity: 1 }),
        });
        assert.equal(bought.statusCode, 201, await bought.body.text());
        await assertUntouched(balancer, "after a purchase");
      });
    });
  }
});

/**
 * An instance stand-in whose answers never end: server-sent events as fast as the balancer takes them,
 * or a head and then silence. It counts what it could write, and whether the balancer ever made it wait.
 */
async function streamingServer() {
  const stats = { written: 0, waited: false, closed: 0 };
  const server = http.createServer((req, res) => {
    res.on("close", () => stats.closed++);
    if (req.url === "/ready") {
      res.writeHead(200, { "content-type": "application/json", "content-length": "2" });
      res.end("{}");
      return;
    }
    res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
    if (req.url === "/silent") {
      res.write(": hello\n\n");
      return;
    }
    const event = `data: ${"x".repeat(4000)}\n\n`;
    const pump = () => {
      while (!res.destroyed) {
        stats.written += event.length;
        if (!res.write(event)) {
          stats.waited = true;
          res.once("drain", pump);
          return;
        }
      }
    };
    pump();
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe("balancer: a client that reads nothing holds no upstream slot past the bound", () => {
  for (const { front, upstreamClient } of COMBINATIONS) {
    it(`${front} front, ${upstreamClient} client`, async () => {
      const upstream = await streamingServer();
      const balancer = await spawnBalancer(
        [
          ...["--backend", upstream.url, "--front", front, "--upstream-client", upstreamClient],
          ...["--health-interval-ms", "60000"],
          ...["--upstream-body-timeout-ms", "1000", "--client-send-timeout-ms", "1000"],
        ],
        { BOXOFFICE_ADMIN_TOKEN: TOKEN },
      );
      try {
        // A client that asks for events and reads none of them.
        const flooded = await RawClient.connect(balancer.port);
        flooded.socket.pause();
        flooded.write("GET /flood HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
        // A client whose stream stays silent.
        const silent = await RawClient.connect(balancer.port);
        silent.write("GET /silent HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n\r\n");
        await sleep(300);
        const started = await backends(balancer);
        assert.equal(started[0]!.active, 2, "both streams are in flight");
        let figures = started;

        // The bound is 1 s of stall or silence; the sweeps act within a fraction of it.
        const until = Date.now() + 10_000;
        while (Date.now() < until) {
          figures = await backends(balancer);
          if (figures[0]!.active === 0) break;
          await sleep(100);
        }
        assert.equal(figures[0]!.active, 0, "a stream the client does not read still holds the instance");
        console.log(
          `# ${front} front, ${upstreamClient} client: the instance wrote ${upstream.stats.written} bytes ` +
            "of events for a client that read none, then was made to wait",
        );
        assert.ok(upstream.stats.waited, "the instance was never made to wait for the slow client");
        assert.ok(
          upstream.stats.written < 64 * 1024 * 1024,
          `the instance wrote ${upstream.stats.written} bytes for a client that reads nothing`,
        );
        assert.equal(figures[0]!.state, "up");
        assert.equal(figures[0]!.failures, 0, "a slow client counted against the instance");
        flooded.close();
        silent.close();
      } finally {
        await balancer.stop();
        await upstream.close();
      }
    });
  }
});

/** Instances that take a request whole and then drop the connection without answering. */
async function droppingServers(count: number) {
  const seen: { key: string | undefined }[] = [];
  const servers = await Promise.all(
    Array.from({ length: count }, async () => {
      const server = http.createServer((req, res) => {
        req.resume();
        req.on("end", () => {
          if (req.method === "POST") seen.push({ key: req.headers["idempotency-key"] as string | undefined });
          res.socket?.destroy();
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      return server;
    }),
  );
  return {
    urls: servers.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`),
    seen,
    close: () =>
      Promise.all(
        servers.map(
          (server) =>
            new Promise<void>((resolve) => {
              server.closeAllConnections();
              server.close(() => resolve());
            }),
        ),
      ),
  };
}

describe("balancer: a POST is sent again only with an Idempotency-Key the instance really got", () => {
  for (const { front, upstreamClient } of COMBINATIONS) {
    it(`${front} front, ${upstreamClient} client`, async () => {
      const upstream = await droppingServers(2);
      const balancer = await spawnBalancer([
        ...upstream.urls.flatMap((url) => ["--backend", url]),
        ...["--front", front, "--upstream-client", upstreamClient],
        ...["--health-interval-ms", "60000", "--health-path", "/nothing", "--passive-failure-count", "1000"],
      ]);
      try {
        /** Sends one POST; returns the balancer's status and how many times an instance got it. */
        const post = async (headers: string) => {
          const before = upstream.seen.length;
          const client = await RawClient.connect(balancer.port);
          client.write(`POST /v1/x HTTP/1.1\r\nHost: x\r\n${headers}Content-Length: 2\r\n\r\n{}`);
          const answer = await client.next();
          client.close();
          return { status: answer?.status, body: answer?.body ?? "", sent: upstream.seen.slice(before) };
        };
        const keyed = await post("Idempotency-Key: k-1\r\n");
        assert.equal(keyed.status, 502);
        assert.ok(keyed.sent.length > 1, "a keyed POST was not sent again");
        assert.ok(keyed.sent.every((seen) => seen.key === "k-1"));

        const stripped = await post("Connection: keep-alive, Idempotency-Key\r\nIdempotency-Key: k-2\r\n");
        assert.equal(stripped.status, 502);
        assert.deepEqual(stripped.sent, [{ key: undefined }], "a POST whose key was dropped was sent again");
        assert.match(stripped.body, /not idempotent/);

        const keyless = await post("");
        assert.equal(keyless.status, 502);
        assert.equal(keyless.sent.length, 1, "a POST without a key was sent again");
      } finally {
        await balancer.stop();
        await upstream.close();
      }
    });
  }
});
