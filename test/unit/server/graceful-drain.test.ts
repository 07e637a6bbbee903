import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createServer } from "node:http";
import { connect } from "node:net";
import { once } from "node:events";
import { setTimeout as sleep } from "node:timers/promises";
import { GracefulDrain, LISTEN_GRACE_MS } from "../../../src/server/graceful-drain.js";

/** One GET on a new connection: its status, or the connection's error code. */
function getOnNewConnection(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    let head = "";
    socket.on("error", (error: NodeJS.ErrnoException) => resolve(error.code ?? "error"));
    socket.on("data", (chunk: Buffer) => (head += chunk.toString("latin1")));
    socket.on("close", () => resolve(head.split(" ")[1] ?? "closed without an answer"));
    socket.write("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  });
}

describe("graceful drain", () => {
  it("stops listening within its grace while clients keep connecting, and answers what it accepted", async () => {
    const server = createServer((_request, response) => response.end("ok"));
    const drain = new GracefulDrain(server);
    let accepted = 0;
    server.on("connection", () => accepted++);
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as { port: number };
    // A client that never stops connecting, one new connection every 10 ms.
    const answers: string[] = [];
    let connecting = true;
    const client = (async () => {
      while (connecting) {
        void getOnNewConnection(port).then((answer) => answers.push(answer));
        await sleep(10);
      }
    })();
    await sleep(200);
    const startedAt = performance.now();
    // The deadline is far: only the grace can end the drain before it.
    await drain.drain(60_000);
    const tookMs = performance.now() - startedAt;
    connecting = false;
    await client;
    await sleep(200);
    assert.ok(
      tookMs < 10 * LISTEN_GRACE_MS,
      `the drain ended within its grace, not at the deadline: ${tookMs} ms`,
    );
    assert.ok(answers.includes("ECONNREFUSED"), "connections after the grace were refused");
    // A connection still in the kernel's queue when the listener closes is reset (the race the grace
    // bounds); every connection the server accepted was answered.
    assert.equal(answers.filter((answer) => answer === "200").length, accepted, answers.join(" "));
  });
});
