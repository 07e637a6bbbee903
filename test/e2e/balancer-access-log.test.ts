/**
 * The balancer's access log (`--access-log`), on both fronts, with a real balancer process in front of a
 * real test instance: one JSON line per request, errors included (500 passed on, 504, 502, 503, a client
 * that leaves while waiting for the head and one that leaves in the middle of a stream), with the fields
 * each case must have. The balancer's own `/_lb/` calls (the test polls them) are not requests it
 * proxies and are not logged, so the count is exact.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import {
  spawnBackend,
  spawnBalancer,
  type SpawnedBackend,
  type SpawnedBalancer,
} from "../support/backend-fixture.js";

const TOKEN = "access-log-admin-token";

interface Line {
  time: string;
  requestId: string;
  client: string;
  method: string;
  path: string;
  status: number;
  bytesIn: number;
  bytesOut: number;
  instance: string | null;
  instanceUrl: string | null;
  attempts: number;
  queueMs: number;
  connectMs: number;
  responseMs: number;
  totalMs: number;
  termination: string;
}

async function waitFor(what: string, check: () => Promise<boolean> | boolean, timeoutMs = 15_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(25);
  }
  assert.fail(`timed out waiting for ${what}`);
}

for (const front of ["raw", "node"] as const) {
  describe(`balancer access log (${front} front)`, () => {
    const dir = mkdtempSync(join(tmpdir(), `boxoffice-access-${front}-`));
    const file = join(dir, "access.log");
    let backend: SpawnedBackend;
    let balancer: SpawnedBalancer;

    const lines = (): Line[] =>
      existsSync(file)
        ? readFileSync(file, "utf8")
            .split("\n")
            .filter((line) => line !== "")
            .map((line) => JSON.parse(line) as Line)
        : [];
    /** The line the request just made: the log has exactly `count` lines, this one last. */
    const lineNumber = async (count: number): Promise<Line> => {
      await waitFor(`line ${count} of the access log`, () => lines().length >= count);
      const all = lines();
      assert.equal(all.length, count, "one line per request, no more");
      return all[count - 1]!;
    };
    const active = async (): Promise<number> => {
      const response = await request(`${balancer.url}/_lb/backends`, {
        headers: { authorization: `Bearer ${TOKEN}` },
      });
      const { backends } = (await response.body.json()) as { backends: { active: number }[] };
      return backends[0]?.active ?? 0;
    };
    const checkCommon = (line: Line) => {
      assert.match(line.time, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
      assert.equal(line.client, "127.0.0.1");
      assert.match(line.requestId, /^[A-Za-z0-9\-_.:+=/~]{1,128}$/);
      assert.ok(line.totalMs >= 0);
      assert.ok(line.queueMs >= 0 && line.queueMs <= line.totalMs);
    };

    before(async () => {
      backend = await spawnBackend({ id: "one", delayMs: 5000 });
      balancer = await spawnBalancer(
        [
          "--backend",
          backend.url,
          "--front",
          front,
          "--access-log",
          file,
          "--max-retries",
          "0",
          "--upstream-headers-timeout-ms",
          "3000",
          // No health check after the first: the instance goes down only by the requests below.
          "--health-interval-ms",
          "600000",
          "--passive-failure-count",
          "100",
        ],
        { BOXOFFICE_ADMIN_TOKEN: TOKEN },
      );
    });

    after(async () => {
      await balancer?.stop();
      await backend?.kill();
      rmSync(dir, { recursive: true, force: true });
    });

    it("logs an answered request with its id, path without query, bytes, instance and timings", async () => {
      // The test instance knows no path with a query: its 404 is an answer like any other.
      const response = await request(`${balancer.url}/fixture/stats?token=secret`, {
        headers: { "x-request-id": "access-test-1" },
      });
      const body = await response.body.text();
      assert.equal(response.statusCode, 404);
      const line = await lineNumber(1);
      checkCommon(line);
      assert.equal(line.requestId, "access-test-1");
      assert.equal(line.method, "GET");
      assert.equal(line.path, "/fixture/stats", "the query is dropped by default");
      assert.equal(line.status, 404);
      assert.equal(line.bytesIn, 0);
      assert.equal(line.bytesOut, Buffer.byteLength(body));
      assert.equal(line.instance, "b1");
      assert.equal(line.instanceUrl, backend.url);
      assert.equal(line.attempts, 1);
      assert.ok(line.connectMs >= 0 && line.connectMs <= line.responseMs);
      assert.ok(line.responseMs >= 0 && line.responseMs <= line.totalMs);
      assert.equal(line.termination, "--");
    });

    it("counts the bytes of a request body and passes the made request id to the instance", async () => {
      const response = await request(`${balancer.url}/echo`, { method: "POST", body: "hello world" });
      assert.equal(await response.body.text(), "hello world");
      const seen = JSON.parse(String(response.headers["x-seen-headers"])) as Record<string, string>;
      const line = await lineNumber(2);
      checkCommon(line);
      assert.equal(line.requestId, seen["x-request-id"], "the id in the log is the one the instance got");
      assert.equal(line.method, "POST");
      assert.equal(line.bytesIn, 11);
      assert.equal(line.bytesOut, 11);
      assert.equal(line.termination, "--");
    });

    it("logs a 500 the instance sent as it ended: normally", async () => {
      const response = await request(`${balancer.url}/fail`);
      await response.body.dump();
      assert.equal(response.statusCode, 500);
      const line = await lineNumber(3);
      assert.equal(line.status, 500);
      assert.equal(line.termination, "--");
    });

    it("logs a 504 as an instance timeout waiting for the head (sH)", async () => {
      const response = await request(`${balancer.url}/work`);
      const body = await response.body.text();
      assert.equal(response.statusCode, 504);
      const line = await lineNumber(4);
      checkCommon(line);
      assert.equal(line.status, 504);
      assert.equal(line.termination, "sH");
      assert.equal(line.responseMs, -1, "no head came");
      assert.equal(line.bytesOut, Buffer.byteLength(body));
      assert.equal(line.requestId, response.headers["x-request-id"]);
    });

    it("logs a client that leaves while the instance works as a client abort (CH), no status", async () => {
      const socket = net.connect(balancer.port, "127.0.0.1");
      socket.on("error", () => undefined);
      socket.write("GET /work HTTP/1.1\r\nHost: test\r\n\r\n");
      await waitFor("the request to be with the instance", async () => (await active()) === 1);
      socket.destroy();
      const line = await lineNumber(5);
      checkCommon(line);
      assert.equal(line.path, "/work");
      assert.equal(line.status, -1);
      assert.equal(line.termination, "CH");
      assert.equal(line.bytesOut, 0);
    });

    it("logs a client that leaves in the middle of a stream (CD) with the status and bytes sent", async () => {
      const socket = net.connect(balancer.port, "127.0.0.1");
      socket.on("error", () => undefined);
      let received = "";
      socket.on("data", (chunk: Buffer) => (received += chunk.toString("latin1")));
      socket.write("GET /sse HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n");
      await waitFor("an event to arrive", () => received.includes("data: one"));
      socket.destroy();
      const line = await lineNumber(6);
      assert.equal(line.status, 200);
      assert.equal(line.termination, "CD");
      assert.ok(line.bytesOut > 0);
    });

    it("logs a 502 when the instance is gone (SC), then a 503 when none is up (RC)", async () => {
      await backend.kill();
      const failed = await request(`${balancer.url}/`);
      await failed.body.dump();
      assert.equal(failed.statusCode, 502);
      const line = await lineNumber(7);
      checkCommon(line);
      assert.equal(line.status, 502);
      assert.equal(line.termination, "SC");
      assert.equal(line.instance, "b1");

      const refused = await request(`${balancer.url}/`);
      await refused.body.dump();
      assert.equal(refused.statusCode, 503);
      const last = await lineNumber(8);
      checkCommon(last);
      assert.equal(last.status, 503);
      assert.equal(last.termination, "RC");
      assert.equal(last.instance, null);
      assert.equal(last.attempts, 0);
      assert.equal(last.connectMs, -1);
      assert.equal(last.requestId, refused.headers["x-request-id"]);
    });

    it("has written exactly one line per request when it stops", async () => {
      await balancer.stop();
      assert.equal(lines().length, 8);
      assert.equal(new Set(lines().map((line) => line.requestId)).size, 8, "every request id is its own");
    });
  });
}
