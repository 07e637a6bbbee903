/**
 * `boxoffice rehearse` against a real cluster (`boxoffice up`: a balancer and three instances, each a
 * process of its own, on SQLite files): a small surge of buyers with an instance SIGKILLed in the middle
 * of it passes its verifier, exit code 0, with a report written. Then a test-only corruption of the data
 * (one ticket more written straight into an event's SQLite file, behind the API's back) makes
 * `rehearse --verify-only` on that run's records FAIL with exit code 1.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import Database from "better-sqlite3";
import type { ReportFile } from "../../src/rehearsal/report.js";
import { ClusterProcess, stopAllClusters } from "../support/cluster-process.js";
import { CLI_PATH, E2E_ADMIN_TOKEN } from "../support/server-process.js";

const dirs: string[] = [];
after(async () => {
  await stopAllClusters();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

/** A port the OS says is free now (`up` needs a known port for its balancer). */
async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, "close");
  return port;
}

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function rehearse(args: string[]): { exited: Promise<Run>; running: () => boolean } {
  const child = spawn(process.execPath, [CLI_PATH, "rehearse", ...args], {
    env: { ...process.env, BOXOFFICE_ADMIN_TOKEN: E2E_ADMIN_TOKEN },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let stdout = "";
  let stderr = "";
  child.stdout.on("data", (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on("data", (chunk: Buffer) => (stderr += chunk.toString()));
  const exited = new Promise<Run>((resolve) =>
    child.once("exit", (code) => resolve({ code, stdout, stderr })),
  );
  return { exited, running: () => child.exitCode === null && child.signalCode === null };
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await sleep(100);
  }
  assert.fail(`timed out waiting for ${what}`);
}

describe("boxoffice rehearse", () => {
  it(
    "a surge with an instance SIGKILLed in the middle passes its verifier; a planted extra ticket fails it",
    { timeout: 240_000 },
    async () => {
      const dataDir = mkdtempSync(join(tmpdir(), "boxoffice-rehearse-"));
      dirs.push(dataDir);
      const cluster = await ClusterProcess.start(dataDir, await freePort(), [
        "--instances",
        "3",
        "--instance-port-base",
        String(await freePort()),
      ]);
      const out = join(dataDir, "reports");
      const run = rehearse([
        "--url",
        cluster.url,
        "--rate",
        "40",
        "--ramp-seconds",
        "1",
        "--duration-seconds",
        "10",
        // More than the surge can buy in its 10 s: general admission is still on sale after the kill,
        // however late a loaded machine lets the kill come (the seated event may sell out).
        "--capacity",
        "2000",
        "--seating",
        "1x8x10",
        "--think-ms",
        "300",
        "--max-attempts",
        "30",
        "--max-retry-wait-ms",
        "5000",
        "--connections",
        "32",
        "--out",
        out,
      ]);

      // The kill comes once the surge is reaching the victim, while the rehearsal still runs.
      await waitFor("the surge reaching i-2", async () => {
        const victim = (await cluster.status()).instances.find((i) => i.id === "i-2");
        return (victim?.backend?.requests ?? 0) >= 20 || !run.running();
      });
      assert.ok(run.running(), "the rehearsal is still running when the instance is killed");
      const victim = (await cluster.status()).instances.find((i) => i.id === "i-2");
      assert.ok(victim?.pid, "i-2 runs");
      process.kill(victim.pid, "SIGKILL");
      const killedAtMs = Date.now();

      const result = await run.exited;
      const said = `${result.stdout}\n${result.stderr}`;
      assert.equal(result.code, 0, said);
      assert.match(result.stdout, /^rehearse: PASS: buyers \d+/m, said);
      assert.doesNotMatch(result.stdout, /^ {2}FAIL/m, said);
      const status = await cluster.status();
      assert.ok((status.instances.find((i) => i.id === "i-2")?.restarts ?? 0) >= 1, "i-2 was killed");

      // The report: figures, records and a self-contained page.
      const jsonFile = /^rehearse: figures: (.+)$/m.exec(result.stdout)?.[1];
      assert.ok(jsonFile && existsSync(jsonFile), said);
      const report = JSON.parse(readFileSync(jsonFile, "utf8")) as ReportFile;
      assert.equal(report.verdict, "PASS");
      assert.equal(report.verifier.pass, true);
      assert.deepEqual(
        report.events.map((event) => event.kind),
        ["general", "seated"],
      );
      assert.ok(report.totals.buyers > 50, `${report.totals.buyers} buyers`);
      assert.ok(report.totals.ticketsSold > 0);
      // The kill came while the sale ran: tickets were still on sale, and sold, after it.
      const records = readFileSync(join(dirname(jsonFile), "records.jsonl"), "utf8")
        .split("\n")
        .filter((line) => line !== "")
        .map((line) => JSON.parse(line) as { kind: string; status: number | null; startedAtMs: number });
      assert.ok(
        records.some((r) => r.kind === "purchase" && r.status === 201 && r.startedAtMs > killedAtMs),
        "a purchase started after the kill was sold: the kill came mid-sale",
      );
      assert.equal(report.totals.buyerErrors, 0, report.buyerErrors.join("\n"));
      assert.equal(
        report.timeline.arrivals.reduce((sum, n) => sum + n, 0),
        report.totals.buyers,
      );
      assert.ok(Object.keys(report.totals.instances).length >= 2, JSON.stringify(report.totals.instances));
      const html = readFileSync(jsonFile.replace(/report\.json$/, "report.html"), "utf8");
      assert.match(html, /<span class="verdict pass">PASS<\/span>/);
      assert.equal((html.match(/<svg /g) ?? []).length, 4);
      assert.doesNotMatch(html, /<script|<link|src="http|href="http/, "no external asset, no script");

      // A test-only corruption: one ticket sold behind the API's back, straight into the event's file.
      const general = report.events.find((event) => event.kind === "general");
      assert.ok(general);
      const db = new Database(join(dataDir, "events", `${general.id}.db`));
      db.pragma("busy_timeout = 5000");
      const changed = db
        .prepare("UPDATE inventory SET capacity = capacity + 1, sold = sold + 1 WHERE event_id = ?")
        .run(general.id);
      db.close();
      assert.equal(changed.changes, 1);

      const again = await rehearse(["--verify-only", jsonFile]).exited;
      assert.equal(again.code, 1, `${again.stdout}\n${again.stderr}`);
      assert.match(again.stdout, /^ {2}FAIL {2}sold-equals-orders: event evt_\w+: sold \d+/m, again.stdout);
      assert.match(again.stdout, /^rehearse: FAIL/m);
      await cluster.stop();
    },
  );
  it(
    "rehearses a sale behind a waiting room: every buyer joins, follows pollAfterMs and buys with its passes",
    { timeout: 240_000 },
    async () => {
      const dataDir = mkdtempSync(join(tmpdir(), "boxoffice-rehearse-room-"));
      dirs.push(dataDir);
      const cluster = await ClusterProcess.start(dataDir, await freePort(), [
        "--instances",
        "2",
        "--instance-port-base",
        String(await freePort()),
      ]);
      const admin = { authorization: `Bearer ${E2E_ADMIN_TOKEN}`, "content-type": "application/json" };
      const created = await fetch(`${cluster.url}/v1/events`, {
        method: "POST",
        headers: admin,
        body: JSON.stringify({ name: "Behind a room", capacity: 2000, maxPerOrder: 8, maxPerCustomer: 8 }),
      });
      assert.equal(created.status, 201, await created.clone().text());
      const eventId = ((await created.json()) as { id: string }).id;
      const room = await fetch(`${cluster.url}/v1/events/${eventId}/waiting-room`, {
        method: "PUT",
        headers: admin,
        body: JSON.stringify({ admissionRatePerSecond: 10 }),
      });
      assert.equal(room.status, 201, await room.text());

      const out = join(dataDir, "reports");
      // 30 buyers a second for 3 s, let in 10 a second: most of them wait their turn.
      const result = await rehearse([
        "--url",
        cluster.url,
        "--event",
        eventId,
        "--rate",
        "30",
        "--ramp-seconds",
        "1",
        "--duration-seconds",
        "3",
        "--think-ms",
        "100",
        "--out",
        out,
      ]).exited;
      const said = `${result.stdout}\n${result.stderr}`;
      assert.equal(result.code, 0, said);
      assert.match(result.stdout, /^rehearse: PASS: buyers \d+/m, said);
      const jsonFile = /^rehearse: figures: (.+)$/m.exec(result.stdout)?.[1];
      assert.ok(jsonFile && existsSync(jsonFile), said);
      const report = JSON.parse(readFileSync(jsonFile, "utf8")) as ReportFile;
      assert.deepEqual(
        report.events.map((event) => event.door),
        ["waiting room"],
      );
      assert.equal(report.totals.buyerErrors, 0, report.buyerErrors.join("\n"));
      const records = readFileSync(join(dirname(jsonFile), "records.jsonl"), "utf8")
        .split("\n")
        .filter((line) => line !== "")
        .map(
          (line) =>
            JSON.parse(line) as {
              kind: string;
              status: number | null;
              startedAtMs: number;
              headers?: Record<string, string>;
            },
        );
      const sales = records.filter((r) => r.kind === "purchase" || r.kind === "hold");
      assert.ok(sales.length > 0, "buyers got through the room and bought");
      for (const sale of sales) {
        assert.ok(sale.headers?.["access-token"] && sale.headers["queue-token"], JSON.stringify(sale));
        assert.notEqual(sale.status, 403, JSON.stringify(sale));
      }
      // Let in 10 a second: the buyers' first purchases and holds are spread at that pace (less the first
      // buyer's lateness, at most 2 s here), not sent as the buyers arrived, within 3 s.
      const firsts = new Map<string, number>();
      for (const sale of sales) {
        const token = sale.headers!["queue-token"]!;
        firsts.set(token, Math.min(firsts.get(token) ?? Infinity, sale.startedAtMs));
      }
      const times = [...firsts.values()].sort((a, b) => a - b);
      assert.ok(times.length >= 40, `${times.length} buyers bought`);
      assert.ok(
        times.at(-1)! - times[0]! >= (times.length - 1) * 100 - 2000,
        `${times.length} buyers bought over ${times.at(-1)! - times[0]!} ms`,
      );
      await cluster.stop();
    },
  );
});
