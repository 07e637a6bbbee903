/**
 * The access log's writer: sampling, the query kept or dropped, and the bound on what waits for the disk.
 * A disk slower than the traffic is a real FIFO whose reader reads nothing: the kernel's pipe fills and the
 * writes stall, as on a saturated disk. Lines past the bound are dropped and counted, the memory held stays
 * under the bound, and every line counted as written does arrive once the reader reads again.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { closeSync, constants, mkdtempSync, openSync, readSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setImmediate as nextTurn } from "node:timers/promises";
import { AccessLog, type AccessLogEntry } from "../../../src/balancer/access-log.js";

const ENTRY: AccessLogEntry = {
  requestId: "5f0c2a9e81d4-1",
  client: "127.0.0.1",
  method: "POST",
  path: "/v1/events/evt_0123456789/orders",
  status: 201,
  bytesIn: 64,
  bytesOut: 310,
  instance: "b1",
  instanceUrl: "http://127.0.0.1:9101",
  attempts: 1,
  queueMs: 0.01,
  connectMs: 0.02,
  responseMs: 3.5,
  totalMs: 3.61,
  termination: "--",
};

describe("AccessLog", () => {
  it("samples none, all, or about the share asked for", async () => {
    const dir = mkdtempSync(join(tmpdir(), "boxoffice-access-unit-"));
    try {
      const share = (ratio: number) => {
        const log = new AccessLog({
          destination: join(dir, `sample-${ratio}.log`),
          sampleRatio: ratio,
          keepQuery: false,
          maxBufferedBytes: 1 << 20,
        });
        let taken = 0;
        for (let i = 0; i < 2000; i++) if (log.sampled()) taken++;
        return { log, taken };
      };
      const none = share(0);
      const all = share(1);
      const half = share(0.5);
      assert.equal(none.taken, 0);
      assert.equal(all.taken, 2000);
      // 2000 draws at 1/2: outside 800..1200 has a probability below 1e-18.
      assert.ok(half.taken > 800 && half.taken < 1200, `${half.taken} of 2000`);
      await Promise.all([none.log.close(), all.log.close(), half.log.close()]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("drops the query unless told to keep it", async () => {
    const dir = mkdtempSync(join(tmpdir(), "boxoffice-access-unit-"));
    try {
      const options = { sampleRatio: 1, maxBufferedBytes: 1 << 20 };
      const dropping = new AccessLog({ ...options, destination: join(dir, "a.log"), keepQuery: false });
      const keeping = new AccessLog({ ...options, destination: join(dir, "b.log"), keepQuery: true });
      assert.equal(dropping.pathOf("/v1/events?token=secret&x=1"), "/v1/events");
      assert.equal(dropping.pathOf("/v1/events"), "/v1/events");
      assert.equal(keeping.pathOf("/v1/events?token=secret"), "/v1/events?token=secret");
      await Promise.all([dropping.close(), keeping.close()]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("drops and counts lines when the disk is slower than the traffic, and holds no more than its bound", async () => {
    const dir = mkdtempSync(join(tmpdir(), "boxoffice-access-unit-"));
    const fifo = join(dir, "slow-disk");
    execFileSync("mkfifo", [fifo]);
    // The reader opens first (non-blocking) and reads nothing until the end.
    const reader = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const boundBytes = 32 * 1024;
    const log = new AccessLog({
      destination: fifo,
      sampleRatio: 1,
      keepQuery: false,
      maxBufferedBytes: boundBytes,
    });
    const lineBytes = Buffer.byteLength(`${JSON.stringify({ time: new Date().toISOString(), ...ENTRY })}\n`);
    try {
      const offered = 20_000;
      for (let tick = 0; tick < offered / 200; tick++) {
        for (let i = 0; i < 200; i++) log.record(ENTRY);
        await nextTurn();
      }
      assert.equal(log.written + log.dropped, offered);
      assert.ok(log.dropped > 0, "a stalled disk makes lines drop");
      // Taken: what the pipe holds (64 KiB on Linux, at most 1 MiB if raised) plus the bound.
      assert.ok(
        log.written * lineBytes <= boundBytes + 1024 * 1024,
        `${log.written} lines of ${lineBytes} bytes taken with a bound of ${boundBytes}`,
      );

      // The reader reads again: every line counted as written arrives, whole.
      const closing = log.close();
      let text = "";
      const buffer = Buffer.alloc(65536);
      let closed = false;
      void closing.then(() => (closed = true));
      for (;;) {
        let read = 0;
        try {
          read = readSync(reader, buffer);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code !== "EAGAIN") throw error;
        }
        if (read > 0) text += buffer.toString("utf8", 0, read);
        else if (closed) break;
        else await nextTurn();
      }
      const lines = text.split("\n").filter((line) => line !== "");
      assert.equal(lines.length, log.written);
      for (const line of lines)
        assert.equal((JSON.parse(line) as { requestId: string }).requestId, ENTRY.requestId);
    } finally {
      closeSync(reader);
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("loses lines, never the process, when the file cannot be written", async () => {
    const log = new AccessLog({
      destination: join(tmpdir(), "no-such-dir-boxoffice", "access.log"),
      sampleRatio: 1,
      keepQuery: false,
      maxBufferedBytes: 1 << 20,
    });
    // The open fails on libuv's thread pool; from then on every line is dropped and counted.
    const until = Date.now() + 10_000;
    while (log.dropped === 0 && Date.now() < until) {
      log.record(ENTRY);
      await nextTurn();
    }
    const dropped = log.dropped;
    for (let i = 0; i < 10; i++) log.record(ENTRY);
    assert.ok(dropped > 0);
    assert.equal(log.dropped, dropped + 10);
    await log.close();
  });
});
