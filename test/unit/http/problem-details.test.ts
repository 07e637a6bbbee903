/**
 * The one problem+json writer: the body's shape and `type` URI, and the three ways it is written (a
 * Fastify reply, a Node/front response, raw text on a socket), each read back by a real HTTP client.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import Fastify from "fastify";
import {
  PROBLEM_CONTENT_TYPE,
  problemDetails,
  problemResponseText,
  problemType,
  replyProblem,
  writeProblem,
} from "../../../src/http/problem-details.js";

/** Sends `text` raw and reads until the server closes. */
function rawExchange(port: number, text: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1", () => socket.write(text));
    const chunks: Buffer[] = [];
    socket.on("data", (chunk: Buffer) => chunks.push(chunk));
    socket.on("error", reject);
    socket.on("close", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

describe("problem details", () => {
  it("names the documented type URI: the code with hyphens (docs/api.md)", () => {
    assert.equal(problemType("seats_unavailable"), "https://boxoffice.dev/problems/seats-unavailable");
    assert.equal(problemType("backend_failed"), "https://boxoffice.dev/problems/backend-failed");
    assert.equal(problemType("unavailable"), "https://boxoffice.dev/problems/unavailable");
  });

  it("writes type, title, status, detail and code, in that order", () => {
    const problem = problemDetails(409, "sold_out", "Sold out", "no tickets left");
    assert.equal(
      JSON.stringify(problem),
      '{"type":"https://boxoffice.dev/problems/sold-out","title":"Sold out","status":409,' +
        '"detail":"no tickets left","code":"sold_out"}',
    );
  });

  it("writes a whole closing answer as raw text, Content-Length in bytes, extra lines before Connection", () => {
    const problem = problemDetails(400, "invalid_request", "Bad request", "caf\u00e9 \u2192 nope");
    const text = problemResponseText(problem, "X-Served-By: i-1\r\n");
    const body = JSON.stringify(problem);
    assert.equal(
      text,
      "HTTP/1.1 400 Bad Request\r\nContent-Type: application/problem+json\r\n" +
        `Content-Length: ${Buffer.byteLength(body)}\r\nX-Served-By: i-1\r\nConnection: close\r\n\r\n${body}`,
    );
    assert.notEqual(Buffer.byteLength(body), body.length, "the detail is not ASCII, so bytes != characters");
  });

  describe("on the wire", () => {
    let server: http.Server;
    let rawServer: net.Server;
    let port: number;
    let rawPort: number;
    before(async () => {
      server = http.createServer((req, res) => {
        if (req.url === "/started") {
          res.writeHead(200, { "content-length": "10" });
          res.write("partial");
        }
        writeProblem(res, problemDetails(503, "unavailable", "Service unavailable", "busy"), {
          "retry-after": "2",
        });
      });
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
      port = (server.address() as AddressInfo).port;
      rawServer = net.createServer((socket) => {
        socket.once("data", () =>
          socket.end(problemResponseText(problemDetails(431, "headers_too_large", "Too large", "head"))),
        );
      });
      await new Promise<void>((resolve) => rawServer.listen(0, "127.0.0.1", resolve));
      rawPort = (rawServer.address() as AddressInfo).port;
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
      await new Promise((resolve) => rawServer.close(resolve));
    });

    it("writes a response's whole answer with the extra headers", async () => {
      const response = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(response.status, 503);
      assert.equal(response.headers.get("content-type"), PROBLEM_CONTENT_TYPE);
      assert.equal(response.headers.get("retry-after"), "2");
      assert.deepEqual(await response.json(), {
        type: "https://boxoffice.dev/problems/unavailable",
        title: "Service unavailable",
        status: 503,
        detail: "busy",
        code: "unavailable",
      });
    });

    it("cuts a response that has already started instead of writing a second head", async () => {
      await assert.rejects(async () => {
        const response = await fetch(`http://127.0.0.1:${port}/started`);
        await response.text();
      });
    });

    it("is read as a whole HTTP answer from raw text", async () => {
      const answer = await rawExchange(rawPort, "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
      const [head, body] = answer.split("\r\n\r\n");
      assert.match(head!, /^HTTP\/1\.1 431 Request Header Fields Too Large\r\n/);
      assert.match(head!, /\r\nContent-Length: (\d+)\r\n/);
      assert.equal(Number(/Content-Length: (\d+)/.exec(head!)![1]), Buffer.byteLength(body!));
      assert.equal(JSON.parse(body!).code, "headers_too_large");
    });

    it("sends through Fastify with Retry-After only when asked", async () => {
      const app = Fastify({ logger: false });
      const problem = problemDetails(401, "unauthorized", "Unauthorized", "no token");
      app.get("/plain", async (_request, reply) => replyProblem(reply, problem));
      app.get("/retry", async (_request, reply) => replyProblem(reply, problem, 3));
      try {
        const plain = await app.inject({ method: "GET", url: "/plain" });
        assert.equal(plain.statusCode, 401);
        assert.match(String(plain.headers["content-type"]), /^application\/problem\+json/);
        assert.equal(plain.headers["retry-after"], undefined);
        assert.equal(plain.body, JSON.stringify(problem));
        const retry = await app.inject({ method: "GET", url: "/retry" });
        assert.equal(retry.headers["retry-after"], "3");
      } finally {
        await app.close();
      }
    });
  });
});
