/**
 * The balancer's client-facing side under attack, with raw sockets against a real balancer process and
 * an instance that records every request it is given: each parser laxness is refused with a problem+json
 * 400/501 and reaches no instance, CONNECT is refused and counts against no instance, an unread pipeline
 * and an unread event stream hold bounded memory and are cut off, a trickled head is served, a trailer
 * bomb is refused, and a client that closes after a short 401 does not bring the node front down. Every
 * front × upstream client pair runs the same tests.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { spawnBalancer, type SpawnedBalancer } from "../support/backend-fixture.js";

const TOKEN = "attack-test-token";
const BIG_BYTES = 16 * 1024;
const SEND_TIMEOUT_MS = 1500;

interface Seen {
  method: string;
  url: string;
  headers: http.IncomingHttpHeaders;
  rawHeaders: string[];
  body: string;
}

/** An instance that records what reaches it (health checks aside) and answers a few test routes. */
async function startRecordingInstance() {
  const seen: Seen[] = [];
  const counts = { big: 0 };
  const server = http.createServer((req, res) => {
    const url = req.url ?? "/";
    if (url === "/ready") {
      res.end("ok");
      return;
    }
    if (url === "/401") {
      // Answered before the body is read, as an instance's auth hook does.
      seen.push({ method: req.method!, url, headers: req.headers, rawHeaders: req.rawHeaders, body: "" });
      res.writeHead(401, { "content-type": "application/json", "content-length": "2" });
      res.end("{}");
      return;
    }
    if (url === "/big") {
      counts.big++;
      res.writeHead(200, { "content-length": String(BIG_BYTES) });
      res.end(Buffer.alloc(BIG_BYTES, 120));
      return;
    }
    if (url === "/sse") {
      res.writeHead(200, { "content-type": "text/event-stream" });
      const event = `data: ${"x".repeat(4000)}\n\n`;
      const timer = setInterval(() => res.write(event), 5);
      res.on("close", () => clearInterval(timer));
      return;
    }
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("latin1");
      seen.push({ method: req.method!, url, headers: req.headers, rawHeaders: req.rawHeaders, body });
      const text = JSON.stringify({ url, headers: req.headers, body });
      res.writeHead(200, { "content-type": "application/json", "content-length": Buffer.byteLength(text) });
      res.end(text);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    seen,
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** Sends `parts` (30 ms apart) and collects the answer until the balancer closes or `quietMs` pass. */
function exchange(port: number, parts: (string | Buffer)[], quietMs = 500): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let answer = "";
    let timer = setTimeout(() => finish(), quietMs + parts.length * 30);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    socket.on("data", (chunk: Buffer) => {
      answer += chunk.toString("latin1");
      clearTimeout(timer);
      timer = setTimeout(() => finish(), quietMs);
    });
    socket.on("close", finish);
    socket.on("error", () => undefined);
    parts.forEach((part, index) =>
      setTimeout(() => {
        if (!socket.destroyed) socket.write(typeof part === "string" ? Buffer.from(part, "latin1") : part);
      }, index * 30),
    );
  });
}

interface BackendFigures {
  state: string;
  active: number;
  failures?: number;
}

async function backends(balancer: SpawnedBalancer): Promise<BackendFigures[]> {
  const answer = await fetch(`${balancer.url}/_lb/backends`, {
    headers: { authorization: `Bearer ${TOKEN}` },
  });
  return ((await answer.json()) as { backends: BackendFigures[] }).backends;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(50);
  }
  assert.fail(`timed out waiting for ${what}`);
}

/** A request line and headers that each front must refuse before any instance sees them. */
const PROBES: [string, string][] = [
  [
    "TE with a vertical tab",
    "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n",
  ],
  ["TE with a form feed", "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\x0c\r\n\r\n0\r\n\r\n"],
  [
    "TE with a no-break space",
    "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \xa0chunked\r\n\r\n0\r\n\r\n",
  ],
  ["TE chunked not last", "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n"],
  ["TE another coding", "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n"],
  [
    "TE in HTTP/1.0",
    "POST /p HTTP/1.0\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
  ],
  [
    "TE and CL",
    "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
  ],
  ["control byte in a value", "GET /p HTTP/1.1\r\nHost: h\r\nX-A: a\x01b\r\n\r\n"],
  ["DEL in a value", "GET /p HTTP/1.1\r\nHost: h\r\nX-A: a\x7fb\r\n\r\n"],
  ["control byte in the target", "GET /p\x01 HTTP/1.1\r\nHost: h\r\n\r\n"],
  ["byte over 0x7e in the target", "GET /p\xff HTTP/1.1\r\nHost: h\r\n\r\n"],
  [
    "duplicate identical CL",
    "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
  ],
  ["conflicting CL", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"],
  ["CL with a trailing tab", "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 3\t\r\n\r\nabc"],
  ["duplicate Host", "GET /p HTTP/1.1\r\nHost: h\r\nHost: evil\r\n\r\n"],
  ["invalid Host", "GET /p HTTP/1.1\r\nHost: a b@c\r\n\r\n"],
  ["no Host in HTTP/1.1", "GET /p HTTP/1.1\r\n\r\n"],
  ["obs-fold", "GET /p HTTP/1.1\r\nHost: h\r\nX-A: a\r\n b\r\n\r\n"],
  ["bare LF", "GET /p HTTP/1.1\r\nHost: h\nX-A: 1\r\n\r\n"],
  [
    "Connection naming Content-Length",
    "POST /p HTTP/1.1\r\nHost: h\r\nConnection: content-length\r\nContent-Length: 3\r\n\r\nabc",
  ],
  ["CONNECT", "CONNECT h:443 HTTP/1.1\r\nHost: h:443\r\n\r\n"],
  ["TRACE", "TRACE /p HTTP/1.1\r\nHost: h\r\n\r\n"],
  ["unknown method", "BREW /p HTTP/1.1\r\nHost: h\r\n\r\n"],
  ["HTTP/2.0 line", "GET /p HTTP/2.0\r\nHost: h\r\n\r\n"],
];

const VARIANTS = [
  { front: "raw", upstreamClient: "raw" },
  { front: "raw", upstreamClient: "undici" },
  { front: "node", upstreamClient: "raw" },
  { front: "node", upstreamClient: "undici" },
];

for (const { front, upstreamClient } of VARIANTS) {
  describe(`balancer front under attack (${front} front, ${upstreamClient} client)`, () => {
    let instance: Awaited<ReturnType<typeof startRecordingInstance>>;
    let balancer: SpawnedBalancer;

    before(async () => {
      instance = await startRecordingInstance();
      balancer = await spawnBalancer(
        [
          "--backend",
          instance.url,
          "--front",
          front,
          "--upstream-client",
          upstreamClient,
          "--health-interval-ms",
          "200",
          "--client-send-timeout-ms",
          String(SEND_TIMEOUT_MS),
        ],
        { BOXOFFICE_ADMIN_TOKEN: TOKEN },
      );
    });

    after(async () => {
      await balancer?.stop();
      await instance?.close();
    });

    it("refuses every parser laxness with a problem+json 400/501, and no instance sees it", async () => {
      for (const [name, probe] of PROBES) {
        const before = instance.seen.length;
        const answer = await exchange(balancer.port, [probe]);
        assert.match(answer, /^HTTP\/1\.1 (400|501) /, `${name}: ${answer.slice(0, 200)}`);
        assert.match(answer, /content-type: application\/problem\+json/i, name);
        assert.equal(instance.seen.length, before, `${name} reached the instance`);
      }
      const figures = await backends(balancer);
      assert.deepEqual(
        figures.map((backend) => backend.state),
        ["up"],
      );
    });

    it("passes on one normalised framing: one Content-Length, one Host, origin-form", async () => {
      const padded = await exchange(balancer.port, [
        "POST /echo HTTP/1.1\r\nHost: h\r\nContent-Length:  003 \r\n\r\nabc",
      ]);
      assert.match(padded, /^HTTP\/1\.1 200 /);
      let seen = instance.seen.at(-1)!;
      assert.equal(seen.body, "abc");
      assert.deepEqual(
        seen.rawHeaders.filter(
          (_, index) => index % 2 === 0 && /^content-length$/i.test(seen.rawHeaders[index]!),
        ).length,
        1,
      );
      assert.equal(seen.headers["content-length"], "3");
      const absolute = await exchange(balancer.port, [
        "GET http://shop.example:8080/echo?x=1 HTTP/1.1\r\nHost: other.example\r\n\r\n",
      ]);
      assert.match(absolute, /^HTTP\/1\.1 200 /);
      seen = instance.seen.at(-1)!;
      assert.equal(seen.url, "/echo?x=1");
      assert.equal(seen.headers.host, "shop.example:8080");
      const chunked = await exchange(balancer.port, [
        "POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\nX-T: 1\r\n\r\n",
      ]);
      assert.match(chunked, /^HTTP\/1\.1 200 /);
      seen = instance.seen.at(-1)!;
      assert.equal(seen.body, "abc");
      assert.equal(
        seen.headers["transfer-encoding"] === undefined || seen.headers["content-length"] === undefined,
        true,
      );
    });

    it("drops what Connection names, Idempotency-Key included, and sends 100 Continue only to HTTP/1.1", async () => {
      await exchange(balancer.port, [
        "POST /echo HTTP/1.1\r\nHost: h\r\nConnection: keep-alive, Idempotency-Key\r\nIdempotency-Key: k1\r\nContent-Length: 2\r\n\r\nhi",
      ]);
      assert.equal(instance.seen.at(-1)!.headers["idempotency-key"], undefined);
      const closed = await exchange(balancer.port, [
        "GET /echo HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\nGET /echo HTTP/1.1\r\nHost: h\r\n\r\n",
      ]);
      assert.equal(closed.match(/HTTP\/1\.1 200 /g)?.length, 2, "'closed' is not 'close'");
      const old = await exchange(balancer.port, [
        "POST /echo HTTP/1.0\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
        "hi",
      ]);
      assert.doesNotMatch(old, /100 Continue/);
      assert.match(old, /^HTTP\/1\.1 200 /);
    });

    it("refuses CONNECT again and again without taking the instance out of rotation", async () => {
      for (let round = 0; round < 8; round++) {
        const answer = await exchange(balancer.port, [
          "CONNECT 127.0.0.1:22 HTTP/1.1\r\nHost: 127.0.0.1:22\r\n\r\n",
        ]);
        assert.match(answer, /^HTTP\/1\.1 501 /);
      }
      const figures = await backends(balancer);
      assert.equal(figures[0]!.state, "up");
      const health = await fetch(`${balancer.url}/echo`);
      assert.equal(health.status, 200);
      await health.arrayBuffer();
    });

    it("stops serving a pipeline its client does not read, and cuts the client off", async () => {
      const pipelined = 2000;
      const before = instance.counts.big;
      const socket = net.connect({ host: "127.0.0.1", port: balancer.port });
      socket.pause();
      socket.on("error", () => undefined);
      let closed = false;
      socket.on("close", () => (closed = true));
      await new Promise<void>((resolve) => socket.once("connect", resolve));
      socket.write("GET /big HTTP/1.1\r\nHost: h\r\n\r\n".repeat(pipelined));
      await sleep(SEND_TIMEOUT_MS + 2500);
      const served = instance.counts.big - before;
      console.log(
        `# ${front}/${upstreamClient}: ${served} of ${pipelined} pipelined answers of ${BIG_BYTES} bytes produced for a client reading nothing`,
      );
      // Unbounded, all 2000 (32 MiB) would be produced; the kernel's socket buffers take a few MiB.
      assert.ok(served < 600, `${served} answers produced`);
      // Then the client reads: what was queued arrives, and the connection ends short of the pipeline.
      let received = 0;
      socket.on("data", (chunk: Buffer) => (received += chunk.length));
      socket.resume();
      await waitFor("the balancer to close the connection", async () => closed, 15_000);
      assert.ok(received < pipelined * BIG_BYTES, `${received} bytes received`);
    });

    it("cuts off a client that does not read its event stream, and frees the instance's slot", async () => {
      const socket = net.connect({ host: "127.0.0.1", port: balancer.port });
      socket.pause();
      socket.on("error", () => undefined);
      let closed = false;
      socket.on("close", () => (closed = true));
      await new Promise<void>((resolve) => socket.once("connect", resolve));
      socket.write("GET /sse HTTP/1.1\r\nHost: h\r\nAccept: text/event-stream\r\n\r\n");
      await waitFor("the stream to start", async () => (await backends(balancer))[0]!.active === 1);
      await waitFor(
        "the stream's slot to be freed",
        async () => (await backends(balancer))[0]!.active === 0,
        20_000,
      );
      socket.resume();
      await waitFor("the client connection to close", async () => closed, 15_000);
    });

    it("serves a head trickled in one-byte pieces", async () => {
      const head = `GET /echo HTTP/1.1\r\nHost: h\r\nX-Pad: ${"p".repeat(2000)}\r\n\r\n`;
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = net.connect({ host: "127.0.0.1", port: balancer.port });
        socket.setNoDelay(true);
        let text = "";
        socket.on("data", (chunk: Buffer) => {
          text += chunk.toString("latin1");
          if (/\r\n\r\n[\s\S]*\}$/.test(text)) {
            socket.destroy();
            resolve(text);
          }
        });
        socket.on("error", reject);
        let at = 0;
        const step = () => {
          // A few bytes per tick: thousands of reads for one head.
          for (let index = 0; index < 4 && at < head.length; index++) socket.write(head[at++]!);
          if (at < head.length) setImmediate(step);
        };
        socket.once("connect", step);
      });
      assert.match(answer, /^HTTP\/1\.1 200 /);
    });

    it("refuses a trailer bomb before the instance sees the request", async () => {
      const before = instance.seen.length;
      const trailers = "X-T: 0123456789012345678901234567890123456789\r\n".repeat(2000);
      const answer = await exchange(balancer.port, [
        `POST /echo HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n${trailers}\r\n`,
      ]);
      assert.match(answer, /^HTTP\/1\.1 (400|431) /);
      assert.equal(instance.seen.length, before);
    });

    it("stays up when a client closes after a short 401 (the node front used to crash)", async () => {
      // After the 401 the connection is between requests (Node's socket has no response: _httpMessage
      // is null); then the client sends half a request and closes, or sends garbage.
      for (const after of ["GET /echo HTTP/1.1\r\nHo", "\x01\x02garbage\r\n\r\n"]) {
        const answer = await new Promise<string>((resolve) => {
          const socket = net.connect({ host: "127.0.0.1", port: balancer.port });
          let text = "";
          socket.on("error", () => resolve(text));
          socket.on("data", (chunk: Buffer) => {
            text += chunk.toString("latin1");
            if (text.endsWith("{}")) socket.end(after, "latin1");
          });
          socket.on("close", () => resolve(text));
          socket.write("POST /401 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nshort");
        });
        assert.match(answer, /^HTTP\/1\.1 401 /);
      }
      await sleep(300);
      assert.equal(balancer.child.exitCode, null, `the balancer exited: ${balancer.stderr()}`);
      const health = await fetch(`${balancer.url}/_lb/health`);
      assert.equal(health.status, 200);
      await health.arrayBuffer();
      assert.doesNotMatch(balancer.stderr() + balancer.log(), /TypeError/);
    });
  });
}
