/**
 * A dev tool: the whole purchase path under load, profiled. Starts two `boxoffice server` instances
 * and `boxoffice lb` in front of them, each with `node --cpu-prof`, sells one-ticket orders with unique
 * Idempotency-Keys through the balancer with wrk (64 connections), stops everything with SIGTERM (the
 * profiles are written on exit), and turns each profile into a flame graph (bench/flamegraph.ts).
 *
 *   node dist/bench/profile-purchase.js [--store sqlite|<postgres url>] [--lock <lock>] [--events 1|50]
 *                                       [--seconds 10] [--out docs/benchmarks] [--name hot]
 *
 * With a PostgreSQL store the instances share a schema of its own (dropped afterwards). Prints wrk's
 * rate and latency and each process's most expensive functions; writes <out>/profile-<name>-<process>.svg.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fileURLToPath } from "node:url";
import { foldProfile, renderFlameGraph, topFrames } from "./flamegraph.js";
import { freePort } from "../test/support/backend-fixture.js";

const ADMIN_TOKEN = "profile-admin-token-0123456789";
const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

const { values } = parseArgs({
  options: {
    store: { type: "string", default: "sqlite" },
    lock: { type: "string" },
    events: { type: "string", default: "1" },
    seconds: { type: "string", default: "10" },
    out: { type: "string", default: "docs/benchmarks" },
    name: { type: "string", default: "hot" },
  },
});

interface Proc {
  name: string;
  /** When it was spawned (its profile starts about then), ms since the epoch. */
  spawnedAtMs: number;
  child: ChildProcess;
  url: string;
  profileDir: string;
}

async function waitFor(url: string, child: ChildProcess): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    if (child.exitCode !== null) throw new Error(`${url}: exited with ${child.exitCode}`);
    const ok = await fetch(url)
      .then((res) => res.ok)
      .catch(() => false);
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${url} never answered`);
}

async function start(
  name: string,
  args: string[],
  dir: string,
  ready: (url: string) => string,
): Promise<Proc> {
  const port = await freePort();
  const profileDir = join(dir, `prof-${name}`);
  mkdirSync(profileDir);
  const spawnedAtMs = Date.now();
  const child = spawn(
    process.execPath,
    ["--cpu-prof", `--cpu-prof-dir=${profileDir}`, CLI, ...args, "--port", String(port)],
    {
      stdio: ["ignore", "ignore", "inherit"],
      env: { ...process.env, BOXOFFICE_ADMIN_TOKEN: ADMIN_TOKEN, BOXOFFICE_LOG_LEVEL: "warn" },
    },
  );
  const url = `http://127.0.0.1:${port}`;
  await waitFor(ready(url), child);
  return { name, spawnedAtMs, child, url, profileDir };
}

async function stop(proc: Proc): Promise<void> {
  if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.child.once("exit", resolve));
  proc.child.kill("SIGTERM");
  const timer = setTimeout(() => proc.child.kill("SIGKILL"), 20_000);
  await exited;
  clearTimeout(timer);
}

async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), "boxoffice-profile-"));
  const store = values.store ?? "sqlite";
  const postgres = store.startsWith("postgres");
  const schema = `profile_${process.pid}`;
  const storeUrl = postgres ? `${store}${store.includes("?") ? "&" : "?"}schema=${schema}` : store;
  const lock = values.lock ?? "file";
  const eventCount = Number(values.events);
  const seconds = Number(values.seconds);
  const procs: Proc[] = [];
  // The load's start and end: only the samples between them are drawn.
  let loadFromMs = 0;
  let loadToMs = 0;
  try {
    const common = ["--data", join(dir, "data"), "--store", storeUrl, "--lock", lock];
    for (const id of ["s1", "s2"]) {
      procs.push(await start(id, ["server", ...common, "--instance-id", id], dir, (url) => `${url}/ready`));
    }
    const backends = procs.flatMap((proc) => ["--backend", proc.url]);
    const lb = await start(
      "lb",
      ["lb", ...backends, "--max-active-per-backend", "64"],
      dir,
      (url) => `${url}/health`,
    );
    procs.push(lb);
    const events: string[] = [];
    for (let i = 0; i < eventCount; i++) {
      const res = await fetch(`${procs[0]!.url}/v1/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ name: `Profile ${i}`, capacity: 1_000_000, maxPerCustomer: 8 }),
      });
      const body = (await res.json()) as { id?: string };
      if (!res.ok || !body.id) throw new Error(`creating an event: ${res.status} ${JSON.stringify(body)}`);
      events.push(body.id);
    }
    const script = join(dir, "purchase.lua");
    writeFileSync(
      script,
      [
        `local events = { ${events.map((id) => `"${id}"`).join(", ")} }`,
        "local counter, prefix = 0, tostring(math.random(1, 1e9))",
        "function request()",
        "  counter = counter + 1",
        "  local event = events[(counter % #events) + 1]",
        "  return wrk.format('POST', '/v1/events/' .. event .. '/orders',",
        "    { ['Content-Type'] = 'application/json', ['Idempotency-Key'] = prefix .. '-' .. counter },",
        "    '{\"customerId\":\"c' .. prefix .. '-' .. counter .. '\",\"quantity\":1}')",
        "end",
      ].join("\n"),
    );
    loadFromMs = Date.now() + 500;
    const wrk = spawnSync("wrk", ["-t1", "-c64", `-d${seconds}s`, "--latency", "-s", script, lb.url], {
      encoding: "utf8",
    });
    loadToMs = Date.now() - 200;
    if (wrk.status !== 0) throw new Error(`wrk failed: ${wrk.stderr}`);
    const rps = /Requests\/sec:\s+([\d.]+)/.exec(wrk.stdout)?.[1];
    const p99 = /^\s+99%\s+(\S+)/m.exec(wrk.stdout)?.[1];
    const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(wrk.stdout)?.[1] ?? "0";
    console.log(
      `${values.name}: ${rps} req/s, p99 ${p99}, non-2xx ${non2xx} (${store}, lock ${lock}, ${eventCount} events)`,
    );
  } finally {
    await Promise.all(procs.map(stop));
    if (postgres) {
      const pg = (await import("pg")).default;
      const client = new pg.Client({ connectionString: store });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(schema)} CASCADE`);
      await client.end();
    }
  }
  mkdirSync(values.out ?? "docs/benchmarks", { recursive: true });
  for (const proc of procs) {
    const [file] = readdirSync(proc.profileDir).filter((name) => name.endsWith(".cpuprofile"));
    if (!file) {
      console.log(`${proc.name}: no profile written`);
      continue;
    }
    const root = foldProfile(JSON.parse(readFileSync(join(proc.profileDir, file), "utf8")), {
      fromMs: loadFromMs - proc.spawnedAtMs,
      toMs: loadToMs - proc.spawnedAtMs,
    });
    const svg = join(values.out ?? "docs/benchmarks", `profile-${values.name}-${proc.name}.svg`);
    writeFileSync(svg, renderFlameGraph(root, `${values.name}: ${proc.name} (${root.total} samples)`));
    const { self, total } = topFrames(root, 15);
    console.log(`\n${proc.name}: ${root.total} samples -> ${svg}\n  self:`);
    for (const [name, count] of self)
      console.log(`    ${((100 * count) / root.total).toFixed(1).padStart(5)}%  ${name}`);
    console.log("  total:");
    for (const [name, count] of total)
      console.log(`    ${((100 * count) / root.total).toFixed(1).padStart(5)}%  ${name}`);
  }
  rmSync(dir, { recursive: true, force: true });
}

await main();
