/**
 * The balancer's minimal HTTP/1.1 client against real sockets on loopback that answer with the framings
 * an instance may use: content-length, chunked (with trailers), close-delimited, HEAD and 204 with no
 * body, an informational 103 first; and keep-alive reuse, refused connections and timeouts.
 */
import { after, before, describe, it, type TestContext } from "node:test";
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import net, { type AddressInfo } from "node:net";
import { Readable } from "node:stream";
import {
  RawUpstreamPool,
  type UpstreamHandler,
  type UpstreamRequest,
} from "../../../src/balancer/raw-upstream-pool.js";

interface Outcome {
  status?: number;
  headers?: string[];
  body: string;
  sent: boolean;
  error?: Error & { code?: string };
}

function call(pool: RawUpstreamPool, request: Partial<UpstreamRequest> = {}): Promise<Outcome> {
  return new Promise((resolve) => {
    const outcome: Outcome = { body: "", sent: false };
    const handler: UpstreamHandler = {
      onConnect: () => undefined,
      onRequestSent: () => (outcome.sent = true),
      onHeaders: (status, headers) => {
        outcome.status = status;
        outcome.headers = headers.map(String);
        return true;
      },
      onData: (chunk) => {
        outcome.body += chunk.toString("latin1");
        return true;
      },
      onComplete: () => resolve(outcome),
      onError: (error) => {
        outcome.error = error;
        resolve(outcome);
      },
    };
    pool.dispatch({ path: "/", method: "GET", headers: ["host", "x"], body: null, ...request }, handler);
  });
}

/** A raw TCP server: each request head (and body) goes to `answer`, which writes whatever it likes. */
async function rawServer(
  answer: (request: string, socket: net.Socket) => void,
): Promise<{ port: number; connections: () => number; close: () => Promise<void> }> {
  let connections = 0;
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    let buffered = "";
    socket.on("data", (chunk) => {
      buffered += chunk.toString("latin1");
      const end = buffered.indexOf("\r\n\r\n");
      if (end === -1) return;
      const length = Number(/content-length: (\d+)/i.exec(buffered.slice(0, end))?.[1] ?? 0);
      const chunked = /transfer-encoding: chunked/i.test(buffered.slice(0, end));
      if (chunked ? !buffered.endsWith("0\r\n\r\n") : buffered.length < end + 4 + length) return;
      const request = buffered;
      buffered = "";
      answer(request, socket);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as AddressInfo).port,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  };
}

const OPTIONS = { keepAliveMs: 2000, connectTimeoutMs: 1000, headersTimeoutMs: 300, bodyTimeoutMs: 300 };

describe("RawUpstreamPool", () => {
  let server: Awaited<ReturnType<typeof rawServer>>;
  let pool: RawUpstreamPool;
  const requests: string[] = [];
  const bodies: Buffer[] = [];

  before(async () => {
    server = await rawServer((request, socket) => {
      requests.push(request);
      const path = request.split(" ")[1];
      switch (path) {
        case "/length":
          socket.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-Served-By: t\r\n\r\nhe");
          setTimeout(() => socket.write("llo"), 10);
          return;
        case "/chunked":
          socket.write("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n");
          setTimeout(() => socket.write("A\r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n"), 10);
          return;
        case "/close":
          socket.end("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil the end");
          return;
        case "/no-content":
          socket.write("HTTP/1.1 204 No Content\r\n\r\n");
          return;
        case "/early-hints":
          socket.write(
            "HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
          );
          return;
        case "/echo": {
          const body = request.slice(request.indexOf("\r\n\r\n") + 4);
          socket.write(
            `HTTP/1.1 200 OK\r\nContent-Length: ${Buffer.byteLength(body, "latin1")}\r\n\r\n${body}`,
          );
          return;
        }
        case "/random": {
          // A body of its own for each request, in several writes.
          const body = randomBytes(150_000);
          socket.write(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n`);
          // One write after another, each from the previous one's timer: timers of different lengths
          // can fire out of order on a loaded machine, and the body would then be sent changed.
          const writeFrom = (offset: number): void => {
            if (offset >= body.length || socket.destroyed) return;
            socket.write(body.subarray(offset, offset + 20_000));
            setTimeout(() => writeFrom(offset + 20_000), 10);
          };
          writeFrom(0);
          bodies.push(body);
          return;
        }
        case "/hop":
          socket.write(
            "HTTP/1.1 200 OK\r\nX-A: 1\r\nConnection: keep-alive\r\nKeep-Alive: timeout=5\r\n" +
              "Content-Type: text/event-stream\r\nX-B:  two \r\nContent-Length: 2\r\n\r\nok",
          );
          return;
        case "/listed":
          socket.write(
            "HTTP/1.1 200 OK\r\nConnection: keep-alive, X-Private\r\nX-Private: 1\r\nContent-Length: 0\r\n\r\n",
          );
          return;
        case "/silent":
          return;
        case "/reset":
          socket.destroy();
          return;
        default:
          if (request.startsWith("HEAD ")) socket.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
      }
    });
    pool = new RawUpstreamPool(`http://127.0.0.1:${server.port}`, OPTIONS);
  });

  after(async () => {
    await pool.destroy();
    await server.close();
  });

  it("reads content-length bodies and reuses the connection", async () => {
    const before = server.connections();
    for (let i = 0; i < 3; i++) {
      const outcome = await call(pool, { path: "/length" });
      assert.equal(outcome.status, 200);
      assert.equal(outcome.body, "hello");
      assert.ok(outcome.sent);
      assert.deepEqual(outcome.headers, ["Content-Length", "5", "X-Served-By", "t"]);
    }
    assert.ok(server.connections() - before <= 1, "one keep-alive connection serves them all");
  });

  it("never reuses a connection parked past its keep-alive time, swept or not", async () => {
    const shortLived = new RawUpstreamPool(`http://127.0.0.1:${server.port}`, {
      ...OPTIONS,
      keepAliveMs: 100,
    });
    try {
      const before = server.connections();
      assert.equal((await call(shortLived, { path: "/length" })).body, "hello");
      // Keep the event loop busy past the keep-alive time, so that no sweep runs before the next request.
      const until = Date.now() + 150;
      while (Date.now() < until);
      assert.equal((await call(shortLived, { path: "/length" })).body, "hello");
      assert.equal(server.connections() - before, 2, "the second request went on a new connection");
    } finally {
      await shortLived.destroy();
    }
  });

  it("decodes chunked bodies and skips trailers", async () => {
    const outcome = await call(pool, { path: "/chunked" });
    assert.equal(outcome.body, "abc0123456789");
    const again = await call(pool, { path: "/length" });
    assert.equal(again.body, "hello", "the connection is still in step after the trailers");
  });

  it("reads a close-delimited body to the end", async () => {
    const outcome = await call(pool, { path: "/close" });
    assert.equal(outcome.error, undefined);
    assert.equal(outcome.body, "until the end");
  });

  /**
   * Six GET /random at once, each body collected by the handler `collect` makes; then every body the
   * server sent must have arrived unchanged. Timeouts far from the test's timing, so that a loaded machine
   * cannot fail it for the wrong reason.
   */
  async function sixRandomBodies(
    t: TestContext,
    collect: (chunks: Buffer[]) => Pick<UpstreamHandler, "onData" | "onBorrowedData">,
  ): Promise<void> {
    bodies.length = 0;
    const patient = new RawUpstreamPool(`http://127.0.0.1:${server.port}`, {
      ...OPTIONS,
      headersTimeoutMs: 10_000,
      bodyTimeoutMs: 10_000,
    });
    t.after(() => patient.destroy());
    const received = await Promise.all(
      Array.from(
        { length: 6 },
        () =>
          new Promise<Buffer>((resolve, reject) => {
            const chunks: Buffer[] = [];
            patient.dispatch(
              { path: "/random", method: "GET", headers: ["host", "x"], body: null },
              {
                onConnect: () => undefined,
                onHeaders: () => true,
                ...collect(chunks),
                onComplete: () => resolve(Buffer.concat(chunks)),
                onError: reject,
              },
            );
          }),
      ),
    );
    assert.equal(bodies.length, 6);
    for (const body of bodies)
      assert.ok(
        received.some((candidate) => candidate.equals(body)),
        "a body arrived changed",
      );
  }

  it("hands the handler body chunks of its own, untouched by later reads on other connections", (t) =>
    // Kept as given, not copied: they must stay as they were when they arrived.
    sixRandomBodies(t, (chunks) => ({ onData: (chunk) => chunks.push(chunk) > 0 })));

  it("lends body bytes to a handler that takes them borrowed, valid during the call only", async (t) => {
    let lent = 0;
    await sixRandomBodies(t, (chunks) => ({
      onData: () => assert.fail("onData is not called when onBorrowedData is there"),
      onBorrowedData: (chunk) => {
        lent++;
        return chunks.push(Buffer.from(chunk)) > 0;
      },
    }));
    assert.ok(lent >= 6);
  });

  it("gives a handler that takes them the head's lines to forward, hop-by-hop ones left out", async () => {
    const forward = (path: string) =>
      new Promise<{ lines?: string; hasLength?: boolean; eventStream?: boolean; pairs?: string[] }>(
        (resolve, reject) => {
          const seen: { lines?: string; hasLength?: boolean; eventStream?: boolean; pairs?: string[] } = {};
          pool.dispatch(
            { path, method: "GET", headers: ["host", "x"], body: null },
            {
              onConnect: () => undefined,
              onForwardHead: (_status, head) => {
                Object.assign(seen, head);
                return true;
              },
              onHeaders: (_status, headers) => {
                seen.pairs = headers.map(String);
                return true;
              },
              onData: () => true,
              onComplete: () => resolve(seen),
              onError: reject,
            },
          );
        },
      );
    const hop = await forward("/hop");
    assert.equal(
      hop.lines,
      "X-A: 1\r\nContent-Type: text/event-stream\r\nX-B:  two \r\nContent-Length: 2\r\n",
    );
    assert.equal(hop.hasLength, true);
    assert.equal(hop.eventStream, true);
    // Connection names another header to drop: the handler gets pairs, and sorts that out itself.
    const listed = await forward("/listed");
    assert.equal(listed.lines, undefined);
    assert.deepEqual(listed.pairs, [
      "Connection",
      "keep-alive, X-Private",
      "X-Private",
      "1",
      "Content-Length",
      "0",
    ]);
  });

  it("expects no body after HEAD or 204, and skips a 103 head", async () => {
    assert.equal((await call(pool, { path: "/no-content" })).status, 204);
    const head = await call(pool, { path: "/head", method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal(head.body, "");
    const hinted = await call(pool, { path: "/early-hints" });
    assert.equal(hinted.status, 200);
    assert.equal(hinted.body, "ok");
  });

  it("sends buffered and streamed request bodies", async () => {
    const buffered = await call(pool, { path: "/echo", method: "POST", body: Buffer.from("ticket") });
    assert.equal(buffered.body, "ticket");
    assert.match(requests.at(-1)!, /content-length: 6/i);
    const streamed = await call(pool, {
      path: "/echo",
      method: "POST",
      body: Readable.from([Buffer.from("one "), Buffer.from("two")]),
    });
    assert.equal(streamed.body, "4\r\none \r\n3\r\ntwo\r\n0\r\n\r\n");
    assert.match(requests.at(-1)!, /transfer-encoding: chunked/i);
  });

  it("times out a silent instance, and tells a reset after sending from a refused connection", async () => {
    const silent = await call(pool, { path: "/silent" });
    assert.equal(silent.error?.code, "UPSTREAM_HEADERS_TIMEOUT");
    const reset = await call(pool, { path: "/reset" });
    assert.ok(reset.error);
    assert.equal(reset.sent, true);
    const closed = net.createServer();
    await new Promise<void>((resolve) => closed.listen(0, "127.0.0.1", resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const refusedPool = new RawUpstreamPool(`http://127.0.0.1:${port}`, OPTIONS);
    const refused = await call(refusedPool);
    assert.equal(refused.error?.code, "ECONNREFUSED");
    assert.equal(refused.sent, false);
    await refusedPool.destroy();
  });
});

describe("RawUpstreamPool: connection reuse only at a message boundary", () => {
  it("closes a connection answered before its request body was all sent, and sends no more of it", async () => {
    // The instance answers 401 as soon as it has the head (as an onRequest hook does) and keeps the
    // connection open, reading whatever comes next as it would the next request.
    const received: string[] = [];
    let connections = 0;
    const server = net.createServer((socket) => {
      connections++;
      let answered = false;
      socket.on("data", (chunk: Buffer) => {
        received.push(chunk.toString("latin1"));
        if (!answered && received.join("").includes("\r\n\r\n")) {
          answered = true;
          socket.write("HTTP/1.1 401 Unauthorized\r\nContent-Length: 2\r\n\r\nno");
        }
      });
      socket.on("error", () => undefined);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as AddressInfo).port;
    const pool = new RawUpstreamPool(`http://127.0.0.1:${port}`, OPTIONS);
    try {
      const body = new Readable({ read: () => undefined });
      body.push(Buffer.from("a".repeat(1000)));
      const answered = await call(pool, {
        path: "/admin",
        method: "POST",
        headers: ["host", "x", "content-length", "2000"],
        body,
      });
      assert.equal(answered.status, 401);
      assert.equal(answered.body, "no");
      // The rest of the body, shaped as a request: it must never reach the instance.
      body.push(Buffer.from(`GET /hidden HTTP/1.1\r\nHost: x\r\n\r\n${"b".repeat(966)}`));
      const next = await call(pool, { path: "/next" });
      assert.equal(next.status, 401);
      await new Promise((resolve) => setTimeout(resolve, 50));
      assert.equal(connections, 2, "the next request went on a new connection");
      assert.ok(!received.join("").includes("/hidden"), "the rest of the body was sent after the answer");
    } finally {
      await pool.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("does not time the instance out while the client holds the response up, and refuses a 101 unasked", async () => {
    const server = await rawServer((request, socket) => {
      if (request.includes("/switch")) {
        socket.write("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n");
        return;
      }
      socket.write("HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nhel");
      setTimeout(() => socket.write("lo!"), 100);
    });
    const pool = new RawUpstreamPool(`http://127.0.0.1:${server.port}`, { ...OPTIONS, bodyTimeoutMs: 100 });
    try {
      const outcome = await new Promise<Outcome>((resolve) => {
        const result: Outcome = { body: "", sent: false };
        let resume: () => void = () => undefined;
        pool.dispatch(
          { path: "/", method: "GET", headers: ["host", "x"], body: null },
          {
            onConnect: () => undefined,
            onHeaders: (status, _headers, resumeReading) => {
              result.status = status;
              resume = resumeReading;
              return true;
            },
            onData: (chunk) => {
              result.body += chunk.toString("latin1");
              // A slow client: the first bytes fill its socket; it takes more only 600 ms later.
              if (result.body.length === 3) setTimeout(() => resume(), 600);
              return result.body.length !== 3;
            },
            onComplete: () => resolve(result),
            onError: (error) => {
              result.error = error;
              resolve(result);
            },
          },
        );
      });
      assert.equal(outcome.error, undefined, "timed out while the client, not the instance, was slow");
      assert.equal(outcome.body, "hello!");
      const switched = await call(pool, { path: "/switch" });
      assert.equal(switched.error?.code, "UPSTREAM_PROTOCOL");
    } finally {
      await pool.destroy();
      await server.close();
    }
  });
});
