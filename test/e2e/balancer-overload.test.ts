/**
 * The balancer under more load than the instances can take, and against clients that misbehave:
 * quick 503s with Retry-After instead of a growing backlog, bounded memory, and malformed requests,
 * huge headers and slow clients turned away while other clients are served.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { Pool, request } from "undici";
import {
  spawnBackend,
  spawnBalancer,
  type SpawnedBackend,
  type SpawnedBalancer,
} from "../support/backend-fixture.js";
import { skipUnlessInstalled } from "../support/tools.js";

/** Writes `payload` on a raw connection and resolves with whatever comes back until the server closes. */
function raw(port: number, payload: string, timeoutMs = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    let answer = "";
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no close within ${timeoutMs} ms; got ${JSON.stringify(answer)}`));
    }, timeoutMs);
    socket.on("data", (chunk) => (answer += chunk.toString("latin1")));
    socket.on("error", () => undefined);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve(answer);
    });
    socket.write(payload);
  });
}

async function rssBytes(balancer: SpawnedBalancer): Promise<number> {
  const text = await (await request(`${balancer.url}/_lb/metrics`)).body.text();
  const line = text
    .split("\n")
    .find((candidate) => candidate.startsWith("boxoffice_lb_process_resident_memory_bytes "));
  return Number(line?.split(" ")[1]);
}

function percentile(sorted: number[], share: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor(share * sorted.length))] ?? 0;
}

describe("balancer: the listen backlog", { skip: skipUnlessInstalled("ss", "-V") }, () => {
  /** The backlog the kernel keeps for a listening port (ss shows it as Send-Q). */
  function kernelBacklog(port: number): number {
    const out = spawnSync("ss", ["-ltnH", `sport = :${port}`], { encoding: "utf8" }).stdout.trim();
    return Number(out.split(/\s+/)[2]);
  }
  const somaxconn = Number(readFileSync("/proc/sys/net/core/somaxconn", "utf8"));

  it("asks the kernel for room for a surge of new connections, as configured", async () => {
    for (const [args, wanted] of [
      [[], 4096],
      [["--listen-backlog", "1500"], 1500],
      [["--mode", "tcp", "--listen-backlog", "700"], 700],
    ] as const) {
      const balancer = await spawnBalancer(["--backend", "http://127.0.0.1:9", ...args]);
      try {
        // Node's own default would be 511; the kernel caps any backlog at net.core.somaxconn.
        assert.equal(kernelBacklog(balancer.port), Math.min(wanted, somaxconn), args.join(" "));
      } finally {
        await balancer.stop();
      }
    }
  });
});

describe("balancer: offered load ten times the capacity", () => {
  let backends: SpawnedBackend[];
  let balancer: SpawnedBalancer;

  before(async () => {
    backends = await Promise.all(["a", "b"].map((id) => spawnBackend({ id, delayMs: 50 })));
    // Capacity: 2 instances x 4 requests at once; 8 more may wait, for at most 300 ms.
    balancer = await spawnBalancer([
      ...backends.flatMap((backend) => ["--backend", backend.url]),
      ...["--max-active-per-backend", "4", "--max-queue", "8", "--queue-timeout-ms", "300"],
    ]);
  });

  after(async () => {
    await balancer?.stop();
    await Promise.all((backends ?? []).map((backend) => backend.kill()));
  });

  it("answers 503 with Retry-After at once, serves the admitted ones, and stays small", async () => {
    const workers = 80;
    const client = new Pool(balancer.url, { connections: workers });
    const admittedMs: number[] = [];
    const rejectedMs: number[] = [];
    const until = Date.now() + 2500;
    try {
      await Promise.all(
        Array.from({ length: workers }, async () => {
          while (Date.now() < until) {
            const startedAt = performance.now();
            const response = await client.request({ path: "/work", method: "GET" });
            const text = await response.body.text();
            const elapsedMs = performance.now() - startedAt;
            if (response.statusCode === 200) {
              admittedMs.push(elapsedMs);
              continue;
            }
            assert.equal(response.statusCode, 503, text);
            assert.equal(response.headers["retry-after"], "1");
            assert.match(String(response.headers["content-type"]), /application\/problem\+json/);
            assert.equal((JSON.parse(text) as { code: string }).code, "unavailable");
            rejectedMs.push(elapsedMs);
            // A real client would honour Retry-After; this one retries soon to keep the pressure on.
            await sleep(5);
          }
        }),
      );
    } finally {
      await client.close();
    }
    admittedMs.sort((a, b) => a - b);
    rejectedMs.sort((a, b) => a - b);
    console.log(
      `# admitted ${admittedMs.length} (p50 ${percentile(admittedMs, 0.5).toFixed(0)} ms, ` +
        `p99 ${percentile(admittedMs, 0.99).toFixed(0)} ms), rejected ${rejectedMs.length} ` +
        `(p50 ${percentile(rejectedMs, 0.5).toFixed(1)} ms, p99 ${percentile(rejectedMs, 0.99).toFixed(1)} ms)`,
    );
    assert.ok(admittedMs.length > 0, "the instances kept serving");
    assert.ok(rejectedMs.length > admittedMs.length, "most of a tenfold overload is turned away");
    // "At once", without timing anything: the balancer counts why it turned each request away, and most
    // were turned away because the queue was full (answered on arrival), not after waiting in it for the
    // queue timeout; and no turned-away request reached an instance.
    const metrics = await (await request(`${balancer.url}/_lb/metrics`)).body.text();
    const rejected = (reason: string): number =>
      metrics
        .split("\n")
        .filter(
          (line) => line.startsWith("boxoffice_lb_rejected_total{") && line.includes(`reason="${reason}"`),
        )
        .reduce((sum, line) => sum + Number(line.split(" ").pop()), 0);
    const full = rejected("queue_full");
    const waited = rejected("queue_timeout");
    assert.equal(
      full + waited + rejected("no_backend"),
      rejectedMs.length,
      "every 503 is the balancer's own",
    );
    assert.ok(full > waited, `turned away on arrival ${full}, after waiting ${waited}`);
    const rss = await rssBytes(balancer);
    console.log(`# balancer RSS after the overload: ${(rss / 2 ** 20).toFixed(0)} MiB`);
    assert.ok(rss > 0 && rss < 300 * 2 ** 20, `RSS ${rss}`);
  });
});

for (const front of ["node", "raw"]) {
  describe(`balancer: misbehaving clients (${front} front)`, () => {
    let backend: SpawnedBackend;
    let balancer: SpawnedBalancer;

    before(async () => {
      backend = await spawnBackend({ id: "a" });
      balancer = await spawnBalancer([
        ...["--backend", backend.url, "--max-header-bytes", "8192", "--front", front],
        ...["--headers-timeout-ms", "500", "--request-timeout-ms", "1000"],
      ]);
    });

    after(async () => {
      await balancer?.stop();
      await backend?.kill();
    });

    /** The answer is a problem+json with this status and code. */
    const assertProblem = (answer: string, status: number, code: string) => {
      assert.match(answer, new RegExp(`^HTTP/1\\.1 ${status} `), answer);
      assert.match(answer, /content-type: application\/problem\+json/i, answer);
      const problem = JSON.parse(answer.slice(answer.indexOf("\r\n\r\n") + 4)) as Record<string, unknown>;
      assert.equal(problem.status, status);
      assert.equal(problem.code, code);
    };

    it("turns away malformed HTTP with a 400 problem", async () => {
      assertProblem(await raw(balancer.port, "HELLO THERE\r\n\r\n"), 400, "invalid_request");
      assertProblem(
        await raw(balancer.port, "GET / HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n"),
        400,
        "invalid_request",
      );
    });

    it("turns away a request head over maxHeaderBytes with a 431 problem", async () => {
      const huge = `GET / HTTP/1.1\r\nHost: x\r\nX-Big: ${"a".repeat(64 * 1024)}\r\n\r\n`;
      assertProblem(await raw(balancer.port, huge), 431, "headers_too_large");
    });

    it("cuts off slow clients while other clients are served", async () => {
      // 200 clients that send half a request head and then nothing.
      const slow = Array.from({ length: 200 }, () => raw(balancer.port, "GET /work HTTP/1.1\r\nHost: x\r\n"));
      const client = new Pool(balancer.url, { connections: 4 });
      try {
        for (let i = 0; i < 50; i++) {
          const response = await client.request({ path: "/", method: "GET" });
          await response.body.dump();
          assert.equal(response.statusCode, 200);
        }
      } finally {
        await client.close();
      }
      const answers = await Promise.all(slow);
      // Each is told why before its connection is closed: a 408, never a silent close.
      for (const answer of answers) assert.match(answer, /^HTTP\/1\.1 408 /, answer);
      // A client sending its body too slowly is cut off as well.
      const slowBody = await raw(
        balancer.port,
        "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc",
      );
      assert.match(slowBody, /^HTTP\/1\.1 408 /, slowBody);
    });
  });
}
