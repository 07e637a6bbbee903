/**
 * The shipped deploy/haproxy.cfg and deploy/nginx.conf, rendered for this test's ports, run as
 * foreground child processes in front of real instances: least connections, X-Forwarded-*, bodies,
 * and traffic moving off a killed instance.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { Pool } from "undici";
import { renderHaproxyConfig, renderNginxConfig } from "../../src/balancer/deploy-config.js";
import { freePort, spawnBackend, type SpawnedBackend } from "../support/backend-fixture.js";
import { skipUnlessInstalled } from "../support/tools.js";

async function waitUntilServing(url: string, child: ChildProcess, output: () => string): Promise<void> {
  const pool = new Pool(url, { connections: 1 });
  try {
    for (let attempt = 0; attempt < 100; attempt++) {
      if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}: ${output()}`);
      try {
        const response = await pool.request({ path: "/", method: "GET" });
        await response.body.dump();
        if (response.statusCode === 200) return;
      } catch {
        // not listening yet
      }
      await sleep(100);
    }
    throw new Error(`not serving: ${output()}`);
  } finally {
    await pool.close();
  }
}

const BALANCERS = [
  {
    name: "HAProxy (balance leastconn)",
    binary: "haproxy",
    start(dir: string, listen: string, backends: string[]): ChildProcess {
      const config = renderHaproxyConfig(readFileSync("deploy/haproxy.cfg", "utf8"), { listen, backends });
      writeFileSync(join(dir, "haproxy.cfg"), config);
      // -db: stay in the foreground, as a child of the test.
      return spawn("haproxy", ["-db", "-f", join(dir, "haproxy.cfg")], { stdio: ["ignore", "pipe", "pipe"] });
    },
  },
  {
    name: "nginx (least_conn)",
    binary: "nginx",
    start(dir: string, listen: string, backends: string[]): ChildProcess {
      const config = renderNginxConfig(readFileSync("deploy/nginx.conf", "utf8"), { listen, backends });
      writeFileSync(join(dir, "nginx.conf"), config);
      mkdirSync(join(dir, "logs"), { recursive: true });
      // -p: pid file and temp paths under the test's own directory.
      return spawn("nginx", ["-p", dir, "-c", join(dir, "nginx.conf"), "-e", "stderr"], {
        stdio: ["ignore", "pipe", "pipe"],
      });
    },
  },
];

for (const balancer of BALANCERS) {
  describe(`deploy config: ${balancer.name}`, { skip: skipUnlessInstalled(balancer.binary) }, () => {
    let dir: string;
    let backends: SpawnedBackend[];
    let child: ChildProcess;
    let output = "";
    let url: string;

    before(async () => {
      dir = mkdtempSync(join(tmpdir(), `boxoffice-${balancer.binary}-`));
      backends = await Promise.all(["a", "b"].map((id) => spawnBackend({ id, delayMs: 10 })));
      const port = await freePort();
      url = `http://127.0.0.1:${port}`;
      child = balancer.start(
        dir,
        `127.0.0.1:${port}`,
        backends.map((backend) => `127.0.0.1:${backend.port}`),
      );
      child.stdout!.on("data", (chunk: Buffer) => (output += chunk.toString()));
      child.stderr!.on("data", (chunk: Buffer) => (output += chunk.toString()));
      await waitUntilServing(url, child, () => output);
    });

    after(async () => {
      if (child && child.exitCode === null) {
        const exited = new Promise((resolve) => child.once("exit", resolve));
        child.kill("SIGTERM");
        const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(timer);
      }
      await Promise.all((backends ?? []).map((backend) => backend.kill()));
      if (dir) rmSync(dir, { recursive: true, force: true });
    });

    it("spreads requests over the instances and forwards bodies and X-Forwarded-*", async () => {
      const client = new Pool(url, { connections: 8 });
      try {
        const servedBy = new Map<string, number>();
        await Promise.all(
          Array.from({ length: 8 }, async () => {
            for (let i = 0; i < 25; i++) {
              const response = await client.request({ path: "/work", method: "GET" });
              await response.body.dump();
              assert.equal(response.statusCode, 200);
              const id = String(response.headers["x-served-by"]);
              servedBy.set(id, (servedBy.get(id) ?? 0) + 1);
            }
          }),
        );
        assert.ok(
          (servedBy.get("a") ?? 0) > 40 && (servedBy.get("b") ?? 0) > 40,
          JSON.stringify([...servedBy]),
        );
        const echo = await client.request({ path: "/echo", method: "POST", body: "ticket" });
        assert.equal(await echo.body.text(), "ticket");
        const seen = JSON.parse(String(echo.headers["x-seen-headers"])) as Record<string, string>;
        assert.equal(seen["x-forwarded-for"], "127.0.0.1");
        assert.equal(seen["x-forwarded-proto"], "http");
      } finally {
        await client.close();
      }
    });

    it("moves traffic off a killed instance", async () => {
      await backends[1]!.kill();
      const client = new Pool(url, { connections: 4 });
      try {
        for (let i = 0; i < 20; i++) {
          const response = await client.request({ path: "/work", method: "GET" });
          await response.body.dump();
          assert.equal(response.statusCode, 200);
          assert.equal(response.headers["x-served-by"], "a");
        }
      } finally {
        await client.close();
      }
    });
  });
}
