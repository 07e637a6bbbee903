/**
 * The scale-out layout of docs/scaling-out.md on four hosts made of network namespaces: "db" runs
 * PostgreSQL and Redis, "app1" and "app2" run `boxoffice server` against them across the network, "lb"
 * runs `boxoffice lb` in front. Buyers in the root namespace sell an event out through the balancer:
 * both app hosts serve, the sales add up exactly, nothing is oversold.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { appendFileSync, chownSync, mkdtempSync, rmSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { promisify } from "node:util";
import { request } from "undici";
import type { Event } from "../../src/domain/event.js";
import type { Order } from "../../src/domain/sale.js";
import { netnsSkipReason, TestNetwork } from "../support/netns-hosts.js";
import { serversSkipReason } from "../support/postgres-servers.js";
import { CLI_PATH, E2E_ADMIN_TOKEN } from "../support/server-process.js";

const run = promisify(execFile);
const PG_BIN = process.env.BOXOFFICE_TEST_PG_BIN ?? "/usr/lib/postgresql/15/bin";
const skip = netnsSkipReason() ?? serversSkipReason();
if (skip) console.log(`# SKIPPED multi-host test: ${skip}`);

async function waitForTcp(host: string, port: number, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const ok = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host, port });
      socket.setTimeout(500, () => (socket.destroy(), resolve(false)));
      socket.once("connect", () => (socket.destroy(), resolve(true)));
      socket.once("error", () => resolve(false));
    });
    if (ok) return;
    await sleep(100);
  }
  throw new Error(`nothing answers at ${host}:${port}`);
}

async function call<T>(
  url: string,
  method: "GET" | "POST",
  body?: unknown,
  headers: Record<string, string> = {},
) {
  const response = await request(url, {
    method,
    headers: body === undefined ? headers : { "content-type": "application/json", ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
    headersTimeout: 20_000,
    bodyTimeout: 20_000,
  });
  const text = await response.body.text();
  return {
    status: response.statusCode,
    headers: response.headers,
    body: (text ? JSON.parse(text) : null) as T,
  };
}

describe(
  "four hosts: db (PostgreSQL + Redis), two app hosts, a balancer host",
  { skip, timeout: 180_000 },
  () => {
    let network: TestNetwork;
    const dirs: string[] = [];
    let lbUrl = "";

    before(async () => {
      network = await TestNetwork.create(["db", "app1", "app2", "lb"]);
      const db = network.host("db");

      // PostgreSQL on the db host, reachable from the test network only.
      const pgDir = mkdtempSync(join(tmpdir(), "boxoffice-netns-pg-"));
      dirs.push(pgDir);
      const uid = Number((await run("id", ["-u", "postgres"])).stdout.trim());
      const gid = Number((await run("id", ["-g", "postgres"])).stdout.trim());
      chownSync(pgDir, uid, gid);
      const data = join(pgDir, "data");
      await run("runuser", [
        "-u",
        "postgres",
        "--",
        join(PG_BIN, "initdb"),
        "-D",
        data,
        "-U",
        "postgres",
        "--auth=trust",
        "--no-sync",
      ]);
      appendFileSync(join(data, "pg_hba.conf"), "host all all 10.203.0.0/16 trust\n");
      db.spawn(
        "runuser",
        [
          "-u",
          "postgres",
          "--",
          join(PG_BIN, "postgres"),
          "-D",
          data,
          "-p",
          "5432",
          "-k",
          pgDir,
          "-c",
          `listen_addresses=${db.ip}`,
          "-c",
          "max_connections=60",
          "-c",
          "shared_buffers=32MB",
        ],
        { stdio: "ignore" },
      );
      // Redis on the db host: the locks.
      db.spawn(
        "redis-server",
        ["--bind", db.ip, "--port", "6379", "--save", "", "--appendonly", "no", "--protected-mode", "no"],
        {
          stdio: "ignore",
        },
      );
      await waitForTcp(db.ip, 5432);
      await waitForTcp(db.ip, 6379);

      const env = {
        ...process.env,
        BOXOFFICE_ADMIN_TOKEN: E2E_ADMIN_TOKEN,
        BOXOFFICE_SIGNING_SECRET: "multi-host-signing-secret-0123456789-0123456789",
      };
      for (const name of ["app1", "app2"]) {
        const app = network.host(name);
        const dataDir = mkdtempSync(join(tmpdir(), `boxoffice-netns-${name}-`));
        dirs.push(dataDir);
        app.spawn(
          process.execPath,
          [
            CLI_PATH,
            "server",
            "--host",
            app.ip,
            "--port",
            "9101",
            "--instance-id",
            name,
            "--data",
            dataDir,
            "--store",
            `postgres://postgres@${db.ip}:5432/postgres`,
            "--lock",
            `redis://${db.ip}:6379`,
            "--lock-scope",
            "event",
            "--log-level",
            "warn",
          ],
          { env, stdio: "ignore" },
        );
        await waitForTcp(app.ip, 9101);
      }
      const lb = network.host("lb");
      const [app1, app2] = [network.host("app1").ip, network.host("app2").ip];
      lb.spawn(
        process.execPath,
        [
          CLI_PATH,
          "lb",
          "--host",
          lb.ip,
          "--port",
          "8080",
          "--backend",
          `http://${app1}:9101`,
          "--backend",
          `http://${app2}:9101`,
          "--health-interval-ms",
          "200",
        ],
        { env, stdio: "ignore" },
      );
      lbUrl = `http://${lb.ip}:8080`;
      await waitForTcp(lb.ip, 8080);
      const deadline = Date.now() + 30_000;
      while (
        Date.now() < deadline &&
        (await call(`${lbUrl}/_lb/health`, "GET").catch(() => ({ status: 0 }))).status !== 200
      ) {
        await sleep(200);
      }
    });

    after(async () => {
      await network?.destroy();
      for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
    });

    it("sells an event out through the balancer, served by both app hosts, exactly once each ticket", async () => {
      const created = await call<Event>(
        `${lbUrl}/v1/events`,
        "POST",
        { name: "Netns", capacity: 300 },
        {
          authorization: `Bearer ${E2E_ADMIN_TOKEN}`,
        },
      );
      assert.equal(created.status, 201, JSON.stringify(created.body));
      const eventId = created.body.id;
      const servedBy = new Set<string>();
      const orders = new Map<string, number>();
      const codes = new Map<number, number>();
      let sequence = 0;
      const buyer = async () => {
        for (let i = 0; i < 100; i++) {
          const key = `netns-${sequence++}`;
          for (let attempt = 0; attempt < 20; attempt++) {
            const answer = await call<Order & { code?: string }>(
              `${lbUrl}/v1/events/${eventId}/orders`,
              "POST",
              { customerId: key, quantity: 1 + (i % 2) },
              { "idempotency-key": key },
            );
            if (answer.status >= 500) {
              await sleep(100);
              continue;
            }
            codes.set(answer.status, (codes.get(answer.status) ?? 0) + 1);
            servedBy.add(String(answer.headers["x-served-by"]));
            if (answer.status === 201) orders.set(answer.body.id, answer.body.quantity);
            else assert.equal(answer.body.code, "sold_out");
            break;
          }
        }
      };
      await Promise.all([buyer(), buyer(), buyer(), buyer()]);
      const event = await call<Event>(`${lbUrl}/v1/events/${eventId}`, "GET");
      assert.equal(event.body.sold, 300);
      assert.equal(
        [...orders.values()].reduce((a, b) => a + b, 0),
        300,
        "the 201 answers add up to the capacity",
      );
      assert.deepEqual([...servedBy].sort(), ["app1", "app2"], "both app hosts served");
      assert.ok((codes.get(409) ?? 0) > 0, "the rest were told sold_out");
    });
  },
);
