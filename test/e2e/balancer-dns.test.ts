/**
 * DNS discovery (`boxoffice lb --backends-dns name:port`) with real processes: a tiny DNS server of the
 * test's own (test/support/dns-server.ts) answers for the name from a table the test changes, real
 * `boxoffice server` instances listen on their own loopback addresses (127.0.0.2, .3) on one port, and the
 * balancer follows the table: an instance added to the name takes requests once its health checks pass,
 * one removed is drained and stops getting requests (a request in flight on it still finishes), and a
 * DNS outage keeps the last known set.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { request } from "undici";
import {
  freePort,
  spawnBackend,
  spawnBalancer,
  type SpawnedBackend,
  type SpawnedBalancer,
} from "../support/backend-fixture.js";
import { TestDnsServer } from "../support/dns-server.js";
import { ServerProcess, stopAll } from "../support/server-process.js";

const NAME = "instances.boxoffice.test";
const TOKEN = "dns-test-admin-token";

interface BackendFigures {
  id: string;
  url: string;
  state: string;
  active: number;
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 15_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (await check()) return;
    await sleep(50);
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe("balancer: instances by DNS (--backends-dns)", () => {
  const dns = new TestDnsServer();
  const dirs: string[] = [];
  let port: number;
  let a: ServerProcess;
  let b: ServerProcess;
  let slow: SpawnedBackend;
  let balancer: SpawnedBalancer;

  const backends = async (): Promise<BackendFigures[]> => {
    const response = await request(`${balancer.url}/_lb/backends`, {
      headers: { authorization: `Bearer ${TOKEN}` },
    });
    return ((await response.body.json()) as { backends: BackendFigures[] }).backends;
  };
  /** Which instance answered `path` through the balancer. */
  const servedBy = async (path = "/health"): Promise<string> => {
    const response = await request(`${balancer.url}${path}`);
    await response.body.dump();
    assert.equal(response.statusCode, 200);
    return String(response.headers["x-served-by"]);
  };
  /** Resolves once the balancer has asked the DNS server at least twice more (a whole interval has run). */
  const twoMoreQueries = async () => {
    const seen = dns.queries;
    await waitFor("the balancer to ask DNS again", async () => dns.queries >= seen + 4);
  };

  before(async () => {
    await dns.start();
    port = await freePort();
    const instance = (id: string, host: string) => {
      const dataDir = mkdtempSync(join(tmpdir(), `boxoffice-dns-${id}-`));
      dirs.push(dataDir);
      return ServerProcess.start({ dataDir, instanceId: id, args: ["--host", host, "--port", String(port)] });
    };
    [a, b, slow] = await Promise.all([
      instance("a", "127.0.0.2"),
      instance("b", "127.0.0.3"),
      spawnBackend({ id: "slow", host: "127.0.0.4", port, delayMs: 1500 }),
    ]);
    assert.equal(a.url, `http://127.0.0.2:${port}`);
    dns.records.set(NAME, ["127.0.0.2"]);
    balancer = await spawnBalancer(
      [
        "--backends-dns",
        `${NAME}:${port}`,
        "--dns-server",
        dns.address,
        "--dns-interval-ms",
        "100",
        "--health-interval-ms",
        "100",
        "--rise-count",
        "2",
        "--slow-start-ms",
        "0",
        "--max-retries",
        "0",
      ],
      { BOXOFFICE_ADMIN_TOKEN: TOKEN },
    );
  });

  after(async () => {
    await balancer?.stop();
    await slow?.kill();
    await stopAll();
    await dns.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it("starts with the name's one address, taken once its health checks pass", async () => {
    await waitFor("a to be up", async () => (await backends()).some((x) => x.state === "up"));
    const listed = await backends();
    assert.deepEqual(
      listed.map((x) => x.url),
      [a.url],
    );
    for (let i = 0; i < 5; i++) assert.equal(await servedBy(), "a");
  });

  it("uses an instance added to the name", async () => {
    dns.records.set(NAME, ["127.0.0.2", "127.0.0.3"]);
    await waitFor("b to be listed and up", async () =>
      (await backends()).some((x) => x.url === b.url && x.state === "up"),
    );
    const seen = new Set<string>();
    // Least connections with both idle alternates between them; a handful of requests reach both.
    await waitFor("b to answer a request", async () => {
      seen.add(await servedBy());
      return seen.has("b");
    });
    assert.ok(seen.has("b"));
  });

  it("drains an instance removed from the name: it gets no more requests and leaves", async () => {
    dns.records.set(NAME, ["127.0.0.3"]);
    await waitFor("a to leave", async () => !(await backends()).some((x) => x.url === a.url));
    for (let i = 0; i < 20; i++) assert.equal(await servedBy(), "b");
  });

  it("keeps the last known instances while DNS fails", async () => {
    dns.failing = true;
    await twoMoreQueries();
    assert.deepEqual(
      (await backends()).map((x) => [x.url, x.state]),
      [[b.url, "up"]],
    );
    for (let i = 0; i < 20; i++) assert.equal(await servedBy(), "b");
    dns.failing = false;
  });

  it("lets a request in flight on a removed instance finish", async () => {
    dns.records.set(NAME, ["127.0.0.4"]);
    await waitFor("only the slow instance to be left, up", async () => {
      const listed = await backends();
      return listed.length === 1 && listed[0]!.url === slow.url && listed[0]!.state === "up";
    });
    const inFlight = request(`${balancer.url}/work`);
    await waitFor("the request to be in flight", async () => (await backends())[0]?.active === 1);
    // The name now has no address at all: the instance is drained, its request still answered.
    dns.records.set(NAME, []);
    await waitFor("the slow instance to be draining", async () => {
      const listed = await backends();
      return listed.length === 0 || listed[0]!.state === "draining";
    });
    const response = await inFlight;
    assert.equal(response.statusCode, 200);
    assert.equal(((await response.body.json()) as { servedBy: string }).servedBy, "slow");
    await waitFor("the drained instance to leave", async () => (await backends()).length === 0);
    const refused = await request(`${balancer.url}/health`);
    await refused.body.dump();
    assert.equal(refused.statusCode, 503);
  });
});
