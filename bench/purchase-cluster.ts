/**
 * What the purchase-path benchmarks share: two `boxoffice server` instances and `boxoffice lb` in front
 * of them (optionally each under `node --cpu-prof`), events created through the admin API, and wrk
 * selling one-ticket orders with unique Idempotency-Keys and customers, spread evenly over the events.
 * Used by bench/sell-spread.bench.ts and bench/profile-purchase.ts.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { freePort } from "../test/support/backend-fixture.js";

const ADMIN_TOKEN = "bench-admin-token-0123456789";
const CLI = fileURLToPath(new URL("../src/cli/main.js", import.meta.url));

export interface ClusterOptions {
  /** A working directory of the caller's (data, profiles, the wrk script). */
  dir: string;
  /** "sqlite" or a postgres:// URL (with its ?schema=). */
  store: string;
  lock: string;
  /** SQLite layout, when the store is SQLite. */
  layout?: "single" | "per-event";
  /** Run each process under `node --cpu-prof`, writing into <dir>/prof-<name>. */
  profile?: boolean;
  /** Another built checkout whose `boxoffice` to run (for A/B against an older build); this one's by default. */
  root?: string;
  /** More flags for `boxoffice lb` (e.g. `--placement event`). */
  lbArgs?: readonly string[];
  /** More flags for each `boxoffice server` (e.g. `--lock-scope global`). */
  serverArgs?: readonly string[];
}

export interface ClusterProcess {
  name: string;
  /** When it was spawned (its profile starts about then), ms since the epoch. */
  spawnedAtMs: number;
  child: ChildProcess;
  url: string;
  profileDir: string | null;
}

export interface WrkResult {
  rps: number;
  /** Answers that were not 2xx (a 503 under overload, a refusal). */
  p99Ms: number;
  non2xx: number;
  errors: number;
  requests: number;
  /** Confirmed orders (2xx answers) per second. */
  confirmedPerS: number;
  /**
   * CPU time (user + system, µs) each process spent while wrk ran, per confirmed order: what a purchase
   * costs the balancer and each instance, a number a busy shared machine moves far less than the rate.
   */
  cpuUsPerOrder: Record<string, number>;
  /** Of that, the part spent in the kernel (system time): socket reads and writes, fsync. */
  sysUsPerOrder: Record<string, number>;
  /**
   * Read- and write-type system calls (read, pread64, readv / write, pwrite64, writev) each process made
   * while wrk ran, per confirmed order, from /proc/<pid>/io: the file I/O a purchase costs.
   */
  readsPerOrder: Record<string, number>;
  writesPerOrder: Record<string, number>;
}

/** Linux counts a process's CPU time in clock ticks of 1/100 s (`getconf CLK_TCK`). */
const CLOCK_TICKS_PER_S = 100;

/** CPU time (µs) a process spent so far in all and in the kernel, from /proc/<pid>/stat; NaN once gone. */
function cpuMicros(pid: number | undefined): { total: number; sys: number } {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]?.split(" ") ?? [];
    // After the ") ": state is field 0, utime field 11, stime field 12.
    const [user, sys] = [Number(fields[11]), Number(fields[12])];
    return { total: ((user + sys) * 1e6) / CLOCK_TICKS_PER_S, sys: (sys * 1e6) / CLOCK_TICKS_PER_S };
  } catch {
    return { total: NaN, sys: NaN };
  }
}

/** Read- and write-type system calls a process made so far, from /proc/<pid>/io; NaN once gone. */
function ioCalls(pid: number | undefined): { reads: number; writes: number } {
  try {
    const text = readFileSync(`/proc/${pid}/io`, "utf8");
    const reads = Number(/^syscr: (\d+)/m.exec(text)?.[1] ?? NaN);
    const writes = Number(/^syscw: (\d+)/m.exec(text)?.[1] ?? NaN);
    return { reads, writes };
  } catch {
    return { reads: NaN, writes: NaN };
  }
}

export class PurchaseCluster {
  readonly processes: ClusterProcess[] = [];
  readonly #options: ClusterOptions;

  constructor(options: ClusterOptions) {
    this.#options = options;
  }

  /** The balancer's URL. */
  get url(): string {
    const lb = this.processes.find((proc) => proc.name === "lb");
    if (!lb) throw new Error("the cluster is not started");
    return lb.url;
  }

  async start(): Promise<void> {
    const { dir, store, lock, layout } = this.#options;
    const common = ["--data", join(dir, "data"), "--store", store, "--lock", lock];
    if (layout) common.push("--layout", layout);
    common.push(...(this.#options.serverArgs ?? []));
    for (const id of ["s1", "s2"]) {
      await this.#spawn(id, ["server", ...common, "--instance-id", id], "/ready");
    }
    const backends = this.processes.flatMap((proc) => ["--backend", proc.url]);
    const lbArgs = this.#options.lbArgs ?? [];
    await this.#spawn("lb", ["lb", ...backends, "--max-active-per-backend", "64", ...lbArgs], "/health");
  }

  /** Creates `count` general-admission events large enough never to sell out; their ids. */
  async createEvents(count: number): Promise<string[]> {
    const instance = this.processes[0];
    if (!instance) throw new Error("the cluster is not started");
    const ids: string[] = [];
    for (let i = 0; i < count; i++) {
      const res = await fetch(`${instance.url}/v1/events`, {
        method: "POST",
        headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
        body: JSON.stringify({ name: `Bench ${i}`, capacity: 1_000_000, maxPerCustomer: 8 }),
      });
      const body = (await res.json()) as { id?: string };
      if (!res.ok || !body.id) throw new Error(`creating an event: ${res.status} ${JSON.stringify(body)}`);
      ids.push(body.id);
    }
    return ids;
  }

  /**
   * wrk through the balancer (or straight to the process named `via`), 64 connections, one-ticket orders
   * spread evenly over `events`.
   */
  sell(events: readonly string[], seconds: number, via = "lb", connections = 64): WrkResult {
    const target = this.processes.find((proc) => proc.name === via);
    if (!target) throw new Error(`no process named ${via}`);
    const script = join(this.#options.dir, `purchase-${Date.now()}.lua`);
    writeFileSync(
      script,
      [
        `local events = { ${events.map((id) => `"${id}"`).join(", ")} }`,
        "local counter, prefix, failed = 0, tostring(math.random(1, 1e9)), 0",
        "function request()",
        "  counter = counter + 1",
        "  local event = events[(counter % #events) + 1]",
        "  return wrk.format('POST', '/v1/events/' .. event .. '/orders',",
        "    { ['Content-Type'] = 'application/json', ['Idempotency-Key'] = prefix .. '-' .. counter },",
        "    '{\"customerId\":\"c' .. prefix .. '-' .. counter .. '\",\"quantity\":1}')",
        "end",
      ].join("\n"),
    );
    const cpuBefore = this.processes.map((proc) => cpuMicros(proc.child.pid));
    const ioBefore = this.processes.map((proc) => ioCalls(proc.child.pid));
    const wrk = spawnSync(
      "wrk",
      ["-t1", `-c${connections}`, `-d${seconds}s`, "--latency", "-s", script, target.url],
      {
        encoding: "utf8",
        timeout: (seconds + 30) * 1000,
      },
    );
    const cpuAfter = this.processes.map((proc) => cpuMicros(proc.child.pid));
    const ioAfter = this.processes.map((proc) => ioCalls(proc.child.pid));
    if (wrk.status !== 0) throw new Error(`wrk failed: ${wrk.stderr}`);
    const socketErrors = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(
      wrk.stdout,
    );
    const rps = Number(/Requests\/sec:\s+([\d.]+)/.exec(wrk.stdout)?.[1] ?? NaN);
    const requests = Number(/(\d+) requests in/.exec(wrk.stdout)?.[1] ?? NaN);
    const non2xx = Number(/Non-2xx or 3xx responses: (\d+)/.exec(wrk.stdout)?.[1] ?? 0);
    const confirmed = requests - non2xx;
    const cpuUsPerOrder: Record<string, number> = {};
    const sysUsPerOrder: Record<string, number> = {};
    const readsPerOrder: Record<string, number> = {};
    const writesPerOrder: Record<string, number> = {};
    this.processes.forEach((proc, i) => {
      const [ioStart, ioEnd] = [ioBefore[i], ioAfter[i]];
      readsPerOrder[proc.name] = ((ioEnd?.reads ?? NaN) - (ioStart?.reads ?? NaN)) / confirmed;
      writesPerOrder[proc.name] = ((ioEnd?.writes ?? NaN) - (ioStart?.writes ?? NaN)) / confirmed;
      const [before, after] = [cpuBefore[i], cpuAfter[i]];
      cpuUsPerOrder[proc.name] = ((after?.total ?? NaN) - (before?.total ?? NaN)) / confirmed;
      sysUsPerOrder[proc.name] = ((after?.sys ?? NaN) - (before?.sys ?? NaN)) / confirmed;
    });
    return {
      rps,
      requests,
      confirmedPerS: requests > 0 ? (rps * confirmed) / requests : 0,
      cpuUsPerOrder,
      sysUsPerOrder,
      readsPerOrder,
      writesPerOrder,
      p99Ms: parseLatencyMs(/^\s+99%\s+(\S+)/m.exec(wrk.stdout)?.[1] ?? ""),
      non2xx,
      errors: socketErrors ? socketErrors.slice(1).reduce((sum, value) => sum + Number(value), 0) : 0,
    };
  }

  /** SIGTERM to every process (a profile is written on exit), SIGKILL after 20 s. */
  async stop(): Promise<void> {
    await Promise.all(
      this.processes.map(async (proc) => {
        if (proc.child.exitCode !== null || proc.child.signalCode !== null) return;
        const exited = new Promise((resolve) => proc.child.once("exit", resolve));
        proc.child.kill("SIGTERM");
        const timer = setTimeout(() => proc.child.kill("SIGKILL"), 20_000);
        await exited;
        clearTimeout(timer);
      }),
    );
  }

  async #spawn(name: string, args: string[], readyPath: string): Promise<void> {
    const port = await freePort();
    const profileDir = this.#options.profile ? join(this.#options.dir, `prof-${name}`) : null;
    if (profileDir) mkdirSync(profileDir);
    const spawnedAtMs = Date.now();
    const child = spawn(
      process.execPath,
      [
        ...(profileDir ? ["--cpu-prof", `--cpu-prof-dir=${profileDir}`] : []),
        this.#options.root ? join(this.#options.root, "dist/src/cli/main.js") : CLI,
        ...args,
        "--port",
        String(port),
      ],
      {
        stdio: ["ignore", "ignore", "inherit"],
        env: { ...process.env, BOXOFFICE_ADMIN_TOKEN: ADMIN_TOKEN, BOXOFFICE_LOG_LEVEL: "warn" },
      },
    );
    const url = `http://127.0.0.1:${port}`;
    this.processes.push({ name, spawnedAtMs, child, url, profileDir });
    for (let attempt = 0; attempt < 300; attempt++) {
      if (child.exitCode !== null) throw new Error(`${name} exited with ${child.exitCode}`);
      const ok = await fetch(`${url}${readyPath}`)
        .then((res) => res.ok)
        .catch(() => false);
      if (ok) return;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    throw new Error(`${name} never answered ${readyPath}`);
  }
}

function parseLatencyMs(text: string): number {
  const match = /^([\d.]+)(us|ms|s)$/.exec(text.trim());
  if (!match) return NaN;
  const value = Number(match[1]);
  return match[2] === "us" ? value / 1000 : match[2] === "s" ? value * 1000 : value;
}
