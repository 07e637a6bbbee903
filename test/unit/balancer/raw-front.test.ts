/**
 * The raw front (the balancer's own HTTP/1.1 server side) on a real loopback socket: framing, keep-alive,
 * pipelining, 100-continue, and every malformed or smuggling-shaped request refused.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import type { Front } from "../../../src/balancer/front.js";
import { createRawFrontServer } from "../../../src/balancer/raw-front.js";

/** Sends `payload` and collects what comes back until the server closes or `quietMs` pass silent. */
function exchange(port: number, payload: string | string[], quietMs = 300): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let answer = "";
    let timer = setTimeout(() => finish(), quietMs);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(answer);
    };
    socket.on("data", (chunk) => {
      answer += chunk.toString("latin1");
      clearTimeout(timer);
      timer = setTimeout(() => finish(), quietMs);
    });
    socket.on("close", finish);
    socket.on("error", () => undefined);
    const parts = Array.isArray(payload) ? payload : [payload];
    parts.forEach((part, index) => setTimeout(() => socket.write(part), index * 30));
  });
}

/** One small chunk (sent with the head), large ones that fill the socket buffers, then many small ones. */
const BORROWED_SIZES = [700, ...Array<number>(60).fill(100_000), ...Array<number>(3000).fill(1000)];
const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);

describe("raw front", () => {
  let front: Front;
  let port: number;
  const errors: string[] = [];

  before(async () => {
    front = createRawFrontServer({
      maxHeaderBytes: 4096,
      headersTimeoutMs: 400,
      requestTimeoutMs: 800,
      clientKeepAliveMs: 1000,
      clientSendTimeoutMs: 5000,
      maxClientConnections: 100,
      onClientError: (kind) => errors.push(kind),
      onRequest: (req, res) => {
        const chunks: Buffer[] = [];
        req.on("data", (chunk) => chunks.push(chunk));
        req.on("end", () => {
          const body = Buffer.concat(chunks).toString("latin1");
          const text = `${req.method} ${req.url} [${body}]${req.completeBody === undefined ? "" : " whole"}`;
          if (req.url?.startsWith("/borrowed")) {
            // Every chunk from one scratch buffer, scribbled over right after each call, as the raw client
            // reuses its read buffer: what reaches the client must be what each chunk held during its call.
            const chunked = req.url.endsWith("chunked");
            const sizes = BORROWED_SIZES;
            res.writeHead(
              200,
              chunked ? ["content-type", "application/octet-stream"] : { "content-length": sum(sizes) },
            );
            const scratch = Buffer.alloc(Math.max(...sizes));
            sizes.forEach((size, index) => {
              const chunk = scratch.subarray(0, size).fill(index % 251);
              res.writeBorrowed!(chunk);
              scratch.fill(0xee);
            });
            res.end();
            return;
          }
          if (req.url === "/head") {
            // What the balancer reads of a head: the flags made as it was parsed, and the pairs made later.
            const seen = JSON.stringify({
              forward: req.forwardLines,
              raw: req.rawHeaders,
              headers: req.headers,
            });
            res.writeHead(200, { "content-length": Buffer.byteLength(seen, "latin1") });
            res.end(seen);
            return;
          }
          if (req.url === "/stream") {
            res.writeHead(200, ["content-type", "text/plain"]);
            res.write(Buffer.from("one,"));
            res.end("two");
            return;
          }
          res.writeHead(200, { "content-length": Buffer.byteLength(text, "latin1") });
          res.end(text);
        });
      },
    });
    await new Promise<void>((resolve) => front.server.listen(0, "127.0.0.1", resolve));
    port = (front.server.address() as AddressInfo).port;
  });

  after(async () => {
    front.closeAllConnections();
    await new Promise<void>((resolve) => front.server.close(() => resolve()));
  });

  it("serves pipelined requests in order on one keep-alive connection", async () => {
    const answer = await exchange(
      port,
      "GET /a HTTP/1.1\r\nHost: x\r\n\r\nPOST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcGET /c HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    const bodies = answer.match(/(GET|POST) \/\w \[\w*\]/g);
    assert.deepEqual(bodies, ["GET /a []", "POST /b [abc]", "GET /c []"]);
  });

  it("hands over a body that came with its head whole, and streams one that came later", async () => {
    const whole = await exchange(port, "POST /w HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc");
    assert.match(whole, /POST \/w \[abc\] whole/);
    const split = await exchange(port, ["POST /s HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nab", "cde"]);
    assert.match(split, /POST \/s \[abcde\]$/);
  });

  it("decodes a chunked request body and re-frames a response without a length as chunked", async () => {
    const answer = await exchange(port, [
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n",
      "2\r\nde\r\n0\r\n\r\n",
    ]);
    assert.match(answer, /\[abcde\]/);
    const streamed = await exchange(port, "GET /stream HTTP/1.1\r\nHost: x\r\n\r\n");
    assert.match(streamed, /transfer-encoding: chunked\r\n\r\n4\r\none,\r\n3\r\ntwo\r\n0\r\n\r\n$/);
  });

  it("answers 100-continue and closes after an HTTP/1.0 request", async () => {
    const answer = await exchange(port, [
      "POST /b HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
      "hi",
    ]);
    assert.match(answer, /^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK/);
    const old = await exchange(port, "GET /old HTTP/1.0\r\n\r\n", 2000);
    assert.match(old, /connection: close/);
  });

  it("refuses malformed and smuggling-shaped requests with 400", async () => {
    const bad = [
      "NOT HTTP\r\n\r\n",
      "GET / HTTP/1.1\r\n\r\n", // no Host
      "GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n",
      "GET / HTTP/1.1\r\nHost: x\r\n folded: 1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
      "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      "GET / HTTP/1.1\r\nHost : x\r\n\r\n", // whitespace before the colon
      "GET / HTTP/1.1\r\nHost: x\nX-Smuggled: 1\r\n\r\n", // bare LF inside the head
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc",
      "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
    ];
    for (const request of bad) assert.match(await exchange(port, request, 1000), /^HTTP\/1\.1 400 /, request);
    // Header lines are checked all at once; a refusal still says what was wrong.
    const detail = async (request: string) =>
      /"detail":"([^"]*)"/.exec(await exchange(port, request, 1000))?.[1];
    assert.equal(await detail("GET / HTTP/1.1\r\nHost: x\r\nBad Header: 1\r\n\r\n"), "bad header name");
    assert.equal(await detail("GET / HTTP/1.1\r\nHost: x\r\nX-A: a\0b\r\n\r\n"), "bad header value");
    assert.equal(await detail("GET / HTTP/1.1\r\nHost: x\r\nno colon\r\n\r\n"), "bad header line");
    assert.match(
      await exchange(port, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 1000),
      /^HTTP\/1\.1 501 /,
    );
  });

  it("reads the headers it acts on in any case, leaves out those not passed on, and gives all pairs on demand", async () => {
    const answer = await exchange(
      port,
      "GET /head HTTP/1.1\r\nhOST: x\r\nIDEMPOTENCY-key: k1\r\nAccept: text/html, text/event-stream\r\n" +
        "x-forwarded-for: 10.0.0.1\r\nConnection: keep-alive\r\nX-A: 1\r\nX-Forwarded-For: 10.0.0.2\r\nx-a: 2\r\n\r\n",
    );
    const seen = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as {
      forward: Record<string, unknown>;
      raw: string[];
      headers: Record<string, string>;
    };
    assert.deepEqual(seen.forward, {
      lines: "hOST: x\r\nIDEMPOTENCY-key: k1\r\nAccept: text/html, text/event-stream\r\nX-A: 1\r\nx-a: 2\r\n",
      forwardedFor: "10.0.0.1, 10.0.0.2",
      clientIp: "127.0.0.1",
      hasHost: true,
      hasLength: false,
      hasIdempotencyKey: true,
      wantsEvents: true,
    });
    assert.equal(seen.raw.length, 16);
    assert.deepEqual(seen.raw.slice(0, 4), ["hOST", "x", "IDEMPOTENCY-key", "k1"]);
    assert.equal(seen.headers["x-a"], "1, 2");
    assert.equal(seen.headers["x-forwarded-for"], "10.0.0.1, 10.0.0.2");

    const plain = await exchange(port, "GET /head HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n");
    const forward = (
      JSON.parse(plain.slice(plain.indexOf("\r\n\r\n") + 4)) as { forward: Record<string, unknown> }
    ).forward;
    assert.equal(forward.hasIdempotencyKey, false);
    assert.equal(forward.wantsEvents, false);
  });

  it("keeps no borrowed chunk by reference, even when a slow client makes writes queue", async () => {
    for (const path of ["/borrowed", "/borrowed?chunked"]) {
      const body = await new Promise<Buffer>((resolve, reject) => {
        http
          // A connection of its own (no agent): reusing the first one for the second path would race the
          // front's keep-alive close on a loaded machine, a client's ECONNRESET that is not what is tested.
          .get({ host: "127.0.0.1", port, path, agent: false }, (response) => {
            // Read late: the answer (9 MB) fills the socket buffers and the rest waits in the front's queue.
            response.pause();
            const chunks: Buffer[] = [];
            response.on("data", (chunk: Buffer) => chunks.push(chunk));
            response.on("end", () => resolve(Buffer.concat(chunks)));
            setTimeout(() => response.resume(), 500);
          })
          .on("error", reject);
      });
      assert.equal(body.length, sum(BORROWED_SIZES), path);
      let at = 0;
      BORROWED_SIZES.forEach((size, index) => {
        const part = body.subarray(at, at + size);
        assert.ok(
          part.every((byte) => byte === index % 251),
          `${path}: chunk ${index} changed`,
        );
        at += size;
      });
    }
  });

  it("finds a head's end however its bytes are split, searching only the new ones", async () => {
    // The CRLF CRLF split at every place across reads; a body and a next request in the last piece.
    for (const parts of [
      ["GET /a HTTP/1.1\r\nHost: x\r", "\n\r", "\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"],
      ["GET /a HTTP/1.1\r\nHost: x\r\n", "\r", "\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"],
      ["G", "ET /a HTTP/1.1\r\nHo", "st: x\r\n\r", "\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"],
      ["\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n", "\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n"],
    ]) {
      const answer = await exchange(port, parts);
      assert.deepEqual(answer.match(/GET \/\w \[\]/g), ["GET /a []", "GET /b []"], JSON.stringify(parts));
    }
  });

  it("bounds a chunked body's trailers like a head (431) and checks them like header lines (400)", async () => {
    const head = "POST /t HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n";
    const fine = await exchange(port, [`${head}X-T: 1\r\n\r\n`]);
    assert.match(fine, /POST \/t \[abc\]/);
    const bomb = await exchange(port, [head, "X-T: 0123456789\r\n".repeat(400), "\r\n"], 1000);
    assert.match(bomb, /^HTTP\/1\.1 431 /);
    const bad = await exchange(port, [`${head}X T: 1\r\n\r\n`], 1000);
    assert.match(bad, /^HTTP\/1\.1 400 /);
  });

  it("refuses a head over maxHeaderBytes with 431 and cuts off slow clients with 408", async () => {
    assert.match(
      await exchange(port, `GET / HTTP/1.1\r\nHost: x\r\nX: ${"a".repeat(5000)}\r\n\r\n`, 1000),
      /^HTTP\/1\.1 431 /,
    );
    assert.match(await exchange(port, "GET / HTTP/1.1\r\nHost: x\r\n", 2000), /^HTTP\/1\.1 408 /);
    assert.match(
      await exchange(port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc", 2000),
      /^HTTP\/1\.1 408 /,
    );
    assert.ok(errors.includes("431") && errors.includes("408") && errors.includes("400"));
  });
});
