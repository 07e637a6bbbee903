/**
 * Request ids end to end, with a real balancer in front of a real `boxoffice server` logging at debug:
 * a client's safe X-Request-Id reaches the instance, which logs it with its line for the request and
 * echoes it; without one the balancer makes one and the instance uses that same id; a hostile id (too
 * long, a tab, a comma or a quote, bytes over 0x7f, a control byte, a second header) is never passed on
 * nor echoed nor logged. The instance alone follows the same rule.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import { spawnBalancer, type SpawnedBalancer } from "../support/backend-fixture.js";
import { ServerProcess, stopAll } from "../support/server-process.js";

/** What the balancer and the instances make: a per-process prefix and a counter. */
const MADE_ID = /^[0-9a-f]{12}-[0-9a-z]+$/;

/** Sends a raw request head and returns the whole answer's head (status line and headers). */
async function rawHead(port: number, head: string): Promise<string> {
  const socket = net.connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  let text = "";
  socket.write(head);
  for await (const chunk of socket as AsyncIterable<Buffer>) {
    text += chunk.toString("latin1");
    if (text.includes("\r\n\r\n")) break;
  }
  socket.destroy();
  return text.slice(0, text.indexOf("\r\n\r\n"));
}

function headerOf(head: string, name: string): string[] {
  return head
    .split("\r\n")
    .filter((line) => line.toLowerCase().startsWith(`${name}:`))
    .map((line) => line.slice(name.length + 1).trim());
}

describe("request ids (X-Request-Id)", () => {
  let dataDir: string;
  let instance: ServerProcess;
  let balancer: SpawnedBalancer;
  let nodeFront: SpawnedBalancer;

  /** The instance's log lines (JSON) for requests, by id. */
  const instanceLines = (requestId: string) =>
    instance.output
      .flatMap((chunk) => chunk.split("\n"))
      .filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as { requestId?: string; msg?: string; time?: string })
      .filter((line) => line.requestId === requestId);
  const waitForLine = async (requestId: string) => {
    const until = Date.now() + 10_000;
    while (Date.now() < until) {
      const lines = instanceLines(requestId);
      if (lines.length > 0) return lines;
      await sleep(25);
    }
    assert.fail(`the instance logged no line with requestId ${requestId}`);
  };

  before(async () => {
    dataDir = mkdtempSync(join(tmpdir(), "boxoffice-request-id-"));
    instance = await ServerProcess.start({ dataDir, instanceId: "rid", args: ["--log-level", "debug"] });
    [balancer, nodeFront] = await Promise.all([
      spawnBalancer(["--backend", instance.url]),
      spawnBalancer(["--backend", instance.url, "--front", "node"]),
    ]);
  });

  after(async () => {
    await balancer?.stop();
    await nodeFront?.stop();
    await stopAll();
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("passes a client's id to the instance, which logs it and echoes it", async () => {
    const response = await request(`${balancer.url}/v1/events`, {
      headers: { "x-request-id": "order-abc_123:4" },
    });
    await response.body.dump();
    assert.equal(response.statusCode, 200);
    assert.equal(response.headers["x-request-id"], "order-abc_123:4");
    const lines = await waitForLine("order-abc_123:4");
    assert.equal(lines[0]!.msg, "request completed");
    // Every process's lines carry the full date and time.
    assert.match(lines[0]!.time ?? "", /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
  });

  it("makes an id for a request without one; the instance logs and echoes the balancer's", async () => {
    const response = await request(`${balancer.url}/v1/events`);
    await response.body.dump();
    const id = String(response.headers["x-request-id"]);
    assert.match(id, MADE_ID);
    await waitForLine(id);
  });

  it("replaces a hostile id through the balancer, on both fronts", async () => {
    const hostile = [
      "a".repeat(129),
      "tab\there",
      "a,b",
      'quote"d',
      "semi;colon",
      "space in it",
      "caf\xe9",
      "back\\slash",
    ];
    for (const [id, port] of hostile.flatMap((id) => [
      [id, balancer.port] as const,
      [id, nodeFront.port] as const,
    ])) {
      const head = await rawHead(
        port,
        `GET /v1/events HTTP/1.1\r\nHost: test\r\nX-Request-Id: ${id}\r\nConnection: close\r\n\r\n`,
      );
      assert.match(head, /^HTTP\/1\.1 200 /, `${JSON.stringify(id)}: ${head}`);
      const echoed = headerOf(head, "x-request-id");
      assert.equal(echoed.length, 1);
      assert.match(echoed[0]!, MADE_ID, `${JSON.stringify(id)} was replaced`);
      await waitForLine(echoed[0]!);
      assert.equal(instanceLines(id).length, 0);
    }
    // A control byte is no HTTP at all: the balancer refuses the request before any instance sees it.
    for (const port of [balancer.port, nodeFront.port]) {
      const control = await rawHead(
        port,
        "GET /v1/events HTTP/1.1\r\nHost: test\r\nX-Request-Id: bad\x01id\r\nConnection: close\r\n\r\n",
      );
      assert.match(control, /^HTTP\/1\.1 400 /);
    }
    // Two ids: the first safe one goes on, once.
    const twice = await rawHead(
      balancer.port,
      "GET /v1/events HTTP/1.1\r\nHost: test\r\nX-Request-Id: first-1\r\nX-Request-Id: second-2\r\nConnection: close\r\n\r\n",
    );
    assert.deepEqual(headerOf(twice, "x-request-id"), ["first-1"]);
    await waitForLine("first-1");
  });

  it("replaces a hostile id sent to the instance directly", async () => {
    const port = Number(new URL(instance.url).port);
    for (const id of ["b".repeat(200), "tab\there", "a,b"]) {
      const head = await rawHead(
        port,
        `GET /v1/events HTTP/1.1\r\nHost: test\r\nX-Request-Id: ${id}\r\nConnection: close\r\n\r\n`,
      );
      assert.match(head, /^HTTP\/1\.1 200 /);
      const echoed = headerOf(head, "x-request-id");
      assert.equal(echoed.length, 1);
      assert.match(echoed[0]!, MADE_ID);
      assert.equal(instanceLines(id).length, 0);
    }
    const safe = await rawHead(
      port,
      "GET /v1/events HTTP/1.1\r\nHost: test\r\nX-Request-Id: direct-7\r\nConnection: close\r\n\r\n",
    );
    assert.deepEqual(headerOf(safe, "x-request-id"), ["direct-7"]);
  });
});
