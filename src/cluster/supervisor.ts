/**
 * The supervisor behind `boxoffice up`: starts the balancer and N instances as separate OS processes,
 * restarts an instance that dies (with backoff), replaces instances one at a time for a rolling restart,
 * and adds or removes instances as the Autoscaler decides. It changes the balancer only through the
 * balancer's public runtime API, and stops every process it started on close().
 */
import { createWriteStream, mkdirSync, type WriteStream } from "node:fs";
import net from "node:net";
import { join } from "node:path";
import { Counter, Gauge, Registry } from "prom-client";
import type { Logger } from "../log/logger.js";
import type { AutoscalePolicy } from "../config/cluster-config.js";
import type { ScaleDecision } from "./autoscaler.js";
import { Autoscaler } from "./autoscaler.js";
import { BalancerClient, type BackendFigures } from "./balancer-client.js";
import { InstanceProcess } from "./instance-process.js";

export interface SupervisorOptions {
  cliPath: string;
  host: string;
  /** The balancer's port: where buyers connect. */
  port: number;
  /** First port tried for instances; each takes the next free one. */
  instancePortBase: number;
  instances: number;
  /** Null: a fixed number of instances. */
  autoscale: AutoscalePolicy | null;
  /** Flags forwarded to every `boxoffice server` (store, lock, data dir, …). */
  serverArgs: readonly string[];
  /** Flags forwarded to `boxoffice lb`. */
  balancerArgs: readonly string[];
  env: NodeJS.ProcessEnv;
  adminToken: string;
  /** Where each child's output goes (<dir>/<id>.log). */
  logDir: string;
  /** The supervisor's own events: instances started, died, retired, scaled (log/logger.ts). */
  log: Logger;
  /** How often the autoscaler samples the balancer. */
  sampleIntervalMs?: number;
  readyTimeoutMs?: number;
  stopGraceMs?: number;
}

export interface InstanceStatus {
  id: string;
  pid: number | undefined;
  url: string;
  state: string;
  restarts: number;
  startedAt: string;
  backend: BackendFigures | null;
}

export interface ClusterStatus {
  balancer: { url: string; pid: number | undefined; state: string };
  instances: InstanceStatus[];
  autoscale: (AutoscalePolicy & { decisions: (ScaleDecision & { at: string })[] }) | null;
}

/** Crashes within this window count towards "keeps crashing". */
const CRASH_WINDOW_MS = 60_000;
const MAX_BACKOFF_MS = 30_000;

export class Supervisor {
  readonly #options: Required<SupervisorOptions>;
  readonly #client: BalancerClient;
  readonly #autoscaler: Autoscaler | null;
  #balancer: InstanceProcess | null = null;
  readonly #instances = new Map<string, InstanceProcess>();
  readonly #crashes = new Map<string, number[]>();
  readonly #restarts = new Map<string, number>();
  readonly #decisions: (ScaleDecision & { at: string })[] = [];
  readonly #timers = new Set<NodeJS.Timeout>();
  readonly #logs = new Map<string, WriteStream>();
  #nextIndex = 1;
  #scaling = false;
  #closing = false;
  #sampler: NodeJS.Timeout | null = null;
  readonly registry = new Registry();
  readonly #metrics;

  constructor(options: SupervisorOptions) {
    this.#options = { sampleIntervalMs: 500, readyTimeoutMs: 30_000, stopGraceMs: 15_000, ...options };
    this.#client = new BalancerClient(`http://${options.host}:${options.port}`, options.adminToken);
    this.#autoscaler = options.autoscale ? new Autoscaler(options.autoscale) : null;
    this.#metrics = {
      instances: new Gauge({
        name: "boxoffice_cluster_instances",
        help: "Instances taking traffic",
        registers: [this.registry],
      }),
      restarts: new Counter({
        name: "boxoffice_cluster_restarts_total",
        help: "Instances restarted after they died",
        registers: [this.registry],
      }),
      scale: new Counter({
        name: "boxoffice_cluster_scale_decisions_total",
        help: "Autoscaling actions taken",
        labelNames: ["direction"] as const,
        registers: [this.registry],
      }),
    };
  }

  get balancerUrl(): string {
    return `http://${this.#options.host}:${this.#options.port}`;
  }

  /** Starts the balancer, then the instances; resolves when all are serving. */
  async start(): Promise<void> {
    mkdirSync(this.#options.logDir, { recursive: true });
    const balancer = new InstanceProcess({
      id: "lb",
      role: "lb",
      port: this.#options.port,
      host: this.#options.host,
      cliPath: this.#options.cliPath,
      args: this.#options.balancerArgs,
      env: this.#options.env,
    });
    this.#balancer = balancer;
    balancer.spawn((line) => this.#childLog("lb", line));
    void balancer.exited().then(({ code, signal }) => {
      if (!this.#closing) {
        this.#options.log.error(`the balancer exited (${signal ?? code}); stopping the cluster`);
        void this.close();
      }
    });
    if (!(await balancer.waitReady(this.#options.readyTimeoutMs))) {
      throw new Error(`the balancer did not start on ${this.balancerUrl}: ${balancer.lastErrors.join("\n")}`);
    }
    balancer.state = "ready";
    await Promise.all(Array.from({ length: this.#options.instances }, () => this.#launch()));
    this.#metrics.instances.set(this.#ready().length);
    if (this.#autoscaler) {
      this.#sampler = setInterval(() => void this.#sample(), this.#options.sampleIntervalMs);
    }
  }

  /** Replaces every instance, one at a time: the new one serves before the old one is drained. */
  async rollingRestart(): Promise<void> {
    const old = this.#ready();
    this.#options.log.info(`rolling restart of ${old.length} instances`);
    for (const instance of old) {
      if (this.#closing) return;
      const replacement = await this.#launch();
      if (!replacement) {
        this.#options.log.warn(`rolling restart stopped: a new instance did not become ready`);
        return;
      }
      await this.#retire(instance);
    }
    this.#options.log.info("rolling restart done");
  }

  /** Stops the balancer and every instance; in-flight requests finish first. Idempotent. */
  async close(): Promise<void> {
    if (this.#closing) return;
    this.#closing = true;
    if (this.#sampler) clearInterval(this.#sampler);
    for (const timer of this.#timers) clearTimeout(timer);
    this.#timers.clear();
    const everyone = [...this.#instances.values(), ...(this.#balancer ? [this.#balancer] : [])];
    await Promise.all(everyone.map((p) => p.stop(this.#options.stopGraceMs)));
    for (const stream of this.#logs.values()) stream.end();
  }

  async status(): Promise<ClusterStatus> {
    let backends: BackendFigures[] = [];
    try {
      backends = await this.#client.backends();
    } catch {
      // the balancer is restarting or gone: show what the supervisor knows
    }
    return {
      balancer: { url: this.balancerUrl, pid: this.#balancer?.pid, state: this.#balancer?.state ?? "exited" },
      instances: [...this.#instances.values()].map((p) => ({
        id: p.spec.id,
        pid: p.pid,
        url: p.url,
        state: p.state,
        restarts: this.#restarts.get(p.spec.id) ?? 0,
        startedAt: new Date(p.startedAtMs).toISOString(),
        backend: backends.find((b) => b.id === p.backendId) ?? null,
      })),
      autoscale: this.#autoscaler ? { ...this.#autoscaler.policy, decisions: [...this.#decisions] } : null,
    };
  }

  #ready(): InstanceProcess[] {
    return [...this.#instances.values()].filter((p) => p.state === "ready");
  }

  #childLog(id: string, line: string): void {
    let stream = this.#logs.get(id);
    if (!stream) {
      stream = createWriteStream(join(this.#options.logDir, `${id}.log`), { flags: "a" });
      this.#logs.set(id, stream);
    }
    stream.write(`${line}\n`);
  }

  /** Starts one instance (under `id`, or a new one) and puts it behind the balancer once ready. */
  async #launch(id = `i-${this.#nextIndex++}`): Promise<InstanceProcess | null> {
    const port = await freePort(this.#options.host, this.#options.instancePortBase, this.#usedPorts());
    const instance = new InstanceProcess({
      id,
      role: "server",
      port,
      host: this.#options.host,
      cliPath: this.#options.cliPath,
      args: this.#options.serverArgs,
      env: this.#options.env,
    });
    this.#instances.set(id, instance);
    instance.spawn((line) => this.#childLog(id, line));
    void instance.exited().then(({ code, signal }) => this.#onExit(instance, code, signal));
    if (!(await instance.waitReady(this.#options.readyTimeoutMs))) {
      // Not ready in time: kill it as a crash, so the restart policy (and its backoff) takes over.
      instance.kill();
      return null;
    }
    try {
      instance.backendId = await this.#client.add(instance.url);
    } catch (error) {
      // The balancer would not take it (restarting, or refusing): a crash, so that the restart policy
      // and its backoff try again, never an unhandled rejection that takes the supervisor down.
      this.#options.log.error({ err: error }, `instance ${id} could not be put behind the balancer`);
      instance.kill();
      return null;
    }
    instance.state = "ready";
    this.#metrics.instances.set(this.#ready().length);
    this.#options.log.info(`instance ${id} serving on ${instance.url} (pid ${instance.pid})`);
    return instance;
  }

  /** Drains an instance at the balancer, waits until it is idle, then stops it. */
  async #retire(instance: InstanceProcess): Promise<void> {
    instance.state = "draining";
    this.#metrics.instances.set(this.#ready().length);
    if (instance.backendId) {
      await this.#client.drain(instance.backendId).catch(() => undefined);
      await this.#client.waitGone(instance.backendId, this.#options.stopGraceMs).catch(() => false);
    }
    await instance.stop(this.#options.stopGraceMs);
    if (instance.backendId) await this.#client.remove(instance.backendId).catch(() => undefined);
    this.#instances.delete(instance.spec.id);
    this.#options.log.info(`instance ${instance.spec.id} stopped`);
  }

  #usedPorts(): Set<number> {
    return new Set([this.#options.port, ...[...this.#instances.values()].map((p) => p.spec.port)]);
  }

  #onExit(instance: InstanceProcess, code: number | null, signal: NodeJS.Signals | null): void {
    const { id } = instance.spec;
    if (this.#closing || this.#instances.get(id) !== instance) return;
    if (instance.stopRequested) return; // retired on purpose
    this.#instances.delete(id);
    this.#metrics.instances.set(this.#ready().length);
    if (instance.backendId) void this.#client.remove(instance.backendId).catch(() => undefined);
    const now = Date.now();
    const crashes = (this.#crashes.get(id) ?? []).filter((t) => now - t < CRASH_WINDOW_MS);
    crashes.push(now);
    this.#crashes.set(id, crashes);
    const backoffMs = Math.min(MAX_BACKOFF_MS, 500 * 2 ** (crashes.length - 1));
    if (crashes.length >= 4) {
      this.#options.log.error(
        `instance ${id} keeps crashing (${crashes.length} times in ${CRASH_WINDOW_MS / 1000} s); ` +
          `next try in ${backoffMs / 1000} s. Its last errors:\n  ${instance.lastErrors.slice(-5).join("\n  ")}`,
      );
    } else {
      this.#options.log.warn(
        `instance ${id} died (${signal ?? `exit ${code}`}); restarting in ${backoffMs} ms`,
      );
    }
    const timer = setTimeout(() => {
      this.#timers.delete(timer);
      if (this.#closing) return;
      this.#restarts.set(id, (this.#restarts.get(id) ?? 0) + 1);
      this.#metrics.restarts.inc();
      this.#launch(id).catch((error: unknown) =>
        this.#options.log.error({ err: error }, `instance ${id} could not be restarted`),
      );
    }, backoffMs);
    this.#timers.add(timer);
  }

  async #sample(): Promise<void> {
    if (!this.#autoscaler || this.#scaling || this.#closing) return;
    let backends: BackendFigures[];
    try {
      backends = await this.#client.backends();
    } catch {
      return;
    }
    const ready = this.#ready();
    const ours = new Set(ready.map((p) => p.backendId));
    const inFlight = backends.filter((b) => ours.has(b.id)).reduce((sum, b) => sum + b.active, 0);
    const decision = this.#autoscaler.observe({ atMs: Date.now(), inFlight, instances: ready.length });
    if (decision.action === "none") return;
    this.#decisions.push({ ...decision, at: new Date().toISOString() });
    if (this.#decisions.length > 50) this.#decisions.shift();
    this.#metrics.scale.inc({ direction: decision.action });
    this.#options.log.info(
      `autoscale ${decision.action}: ${decision.from} -> ${decision.to} instances (${decision.reason})`,
    );
    this.#scaling = true;
    try {
      if (decision.action === "up") await this.#launch();
      else {
        const newest = ready.at(-1);
        if (newest) await this.#retire(newest);
      }
    } finally {
      this.#scaling = false;
    }
  }
}

/** The first port from `base` up that is not in `used` and that this host lets us listen on. */
async function freePort(host: string, base: number, used: Set<number>): Promise<number> {
  for (let port = base; port < base + 1000; port++) {
    if (used.has(port)) continue;
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once("error", () => resolve(false));
      server.listen(port, host, () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port in ${base}..${base + 999} on ${host}`);
}
