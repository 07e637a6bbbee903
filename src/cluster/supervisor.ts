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
import { BoxofficeError } from "../domain/errors.js";
import {
  NO_FIGURES,
  figuresBetween,
  parseMetrics,
  type InstanceFigures,
  type MetricsSample,
} from "./instance-figures.js";
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

/** Something that happened to an instance (started, died, drained, stopped) or to the cluster (scaled). */
export interface ClusterEvent {
  at: string;
  /** The instance, or "cluster". */
  subject: string;
  what: string;
}

/** What the dashboard shows (GET /cluster on the control server, /_lb/cluster through the balancer). */
export interface ClusterView extends ClusterStatus {
  at: string;
  /** The time the rates are over: since the view before, in seconds (null for the first). */
  windowSeconds: number | null;
  instances: (InstanceStatus & { figures: InstanceFigures })[];
  totals: { requestsPerSecond: number | null; ticketsPerSecond: number | null };
  /** The operator's scale actions and the autoscaler's, newest last. */
  scaleActions: (ScaleDecision & { at: string })[];
  history: ClusterEvent[];
}

/** A control action the cluster refuses: the HTTP layer turns `code` into a status. */
export class ClusterActionError extends BoxofficeError {
  constructor(code: "instance_not_found" | "invalid_transition" | "invalid_request", message: string) {
    super(code, message);
  }
}

/** Most instances an operator may ask for by hand without autoscaling (the --instances bound). */
export const MAX_MANUAL_INSTANCES = 256;
/** Views closer together than this share one scrape of the instances. */
const VIEW_REUSE_MS = 500;
const SCRAPE_TIMEOUT_MS = 2000;

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
  readonly #history: ClusterEvent[] = [];
  /** Instances that died and wait for their restart: shown as down until they are started again. */
  readonly #down = new Map<string, { restarts: number; since: string; url: string }>();
  /** The last scrape of each instance process (by pid), for the rates of the next view. */
  #lastSamples = new Map<number, MetricsSample>();
  #lastView: { atMs: number; view: Promise<ClusterView> } | null = null;
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

  /**
   * Starts the balancer, then the instances; resolves when all are serving. `controlUrl`, the control
   * server's address, is given to the balancer, which passes the dashboard's `/_lb/cluster` calls to it.
   */
  async start(controlUrl?: string): Promise<void> {
    mkdirSync(this.#options.logDir, { recursive: true });
    const balancer = new InstanceProcess({
      id: "lb",
      role: "lb",
      port: this.#options.port,
      host: this.#options.host,
      cliPath: this.#options.cliPath,
      args: [...this.#options.balancerArgs, ...(controlUrl ? ["--cluster-url", controlUrl] : [])],
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

  /**
   * Sets the number of instances (with autoscaling, within its bounds): starts new ones, or drains and
   * stops the newest. Answers at once with the change; the instances follow (the view shows them).
   */
  scaleTo(count: number): { from: number; to: number } {
    const policy = this.#autoscaler?.policy;
    const min = policy?.minInstances ?? 1;
    const max = policy?.maxInstances ?? MAX_MANUAL_INSTANCES;
    if (!Number.isInteger(count) || count < min || count > max) {
      const bounds = policy ? " (the autoscaling bounds)" : "";
      throw new ClusterActionError(
        "invalid_request",
        `instances must be a whole number from ${min} to ${max}${bounds}`,
      );
    }
    if (this.#scaling)
      throw new ClusterActionError(
        "invalid_transition",
        "a scaling action is under way; try again once it is done",
      );
    if (this.#closing) throw new ClusterActionError("invalid_transition", "the cluster is stopping");
    const serving = [...this.#instances.values()].filter(
      (p) => p.state === "starting" || p.state === "ready",
    );
    const from = serving.length + this.#down.size;
    if (count === from) return { from, to: count };
    const action = count > from ? "up" : "down";
    this.#recordDecision({ action, from, to: count, reason: "asked by an operator" });
    this.#options.log.info(`scale ${action}: ${from} -> ${count} instances, asked by an operator`);
    this.#scaling = true;
    const work =
      action === "up"
        ? Promise.all(Array.from({ length: count - from }, () => this.#launch()))
        : Promise.all(
            this.#ready()
              .slice(count - from)
              .map((instance) => this.#retire(instance)),
          );
    void work
      .catch((error: unknown) => this.#options.log.error({ err: error }, `scaling to ${count} failed`))
      .finally(() => (this.#scaling = false));
    return { from, to: count };
  }

  /** Drains one instance at the balancer and stops it once idle; the cluster has one fewer after. */
  drainInstance(id: string): void {
    const instance = this.#instances.get(id);
    if (!instance) {
      if (this.#down.has(id))
        throw new ClusterActionError("invalid_transition", `${id} is down: nothing to drain`);
      throw new ClusterActionError("instance_not_found", `no instance ${id}`);
    }
    if (instance.state !== "ready")
      throw new ClusterActionError("invalid_transition", `${id} is ${instance.state}, not serving`);
    if (this.#ready().length <= 1)
      throw new ClusterActionError(
        "invalid_transition",
        `${id} is the last instance serving; scale up first`,
      );
    this.#note(id, "draining (asked by an operator)");
    void this.#retire(instance).catch((error: unknown) =>
      this.#options.log.error({ err: error }, `draining ${id} failed`),
    );
  }

  /**
   * The dashboard's view: the status, each instance's live figures (from its /metrics, over the time
   * since the view before), the scale actions and the recent history. Views asked for within
   * VIEW_REUSE_MS share one scrape, so that several dashboards do not multiply the load.
   */
  view(): Promise<ClusterView> {
    const now = Date.now();
    if (this.#lastView && now - this.#lastView.atMs < VIEW_REUSE_MS) return this.#lastView.view;
    const previousAtMs = this.#lastView?.atMs ?? null;
    const view = this.#buildView(now, previousAtMs);
    this.#lastView = { atMs: now, view };
    return view;
  }

  async #buildView(now: number, previousAtMs: number | null): Promise<ClusterView> {
    const status = await this.status();
    const samples = new Map<number, MetricsSample>();
    const instances = await Promise.all(
      status.instances.map(async (instance) => {
        const pid = instance.pid;
        const scraped =
          pid === undefined || instance.state === "starting" ? null : await scrape(instance.url);
        if (pid === undefined || scraped === null) return { ...instance, figures: NO_FIGURES };
        samples.set(pid, scraped);
        return { ...instance, figures: figuresBetween(this.#lastSamples.get(pid), scraped) };
      }),
    );
    this.#lastSamples = samples;
    for (const [id, down] of this.#down) {
      instances.push({
        id,
        pid: undefined,
        url: down.url,
        state: "down",
        restarts: down.restarts,
        startedAt: down.since,
        backend: null,
        figures: NO_FIGURES,
      });
    }
    instances.sort((a, b) => a.id.localeCompare(b.id, "en", { numeric: true }));
    const sum = (field: "requestsPerSecond" | "ticketsPerSecond") => {
      const values = instances.map((i) => i.figures[field]).filter((v): v is number => v !== null);
      return values.length === 0 ? null : values.reduce((a, b) => a + b, 0);
    };
    return {
      ...status,
      at: new Date(now).toISOString(),
      windowSeconds: previousAtMs === null ? null : (now - previousAtMs) / 1000,
      instances,
      totals: { requestsPerSecond: sum("requestsPerSecond"), ticketsPerSecond: sum("ticketsPerSecond") },
      scaleActions: [...this.#decisions],
      history: [...this.#history],
    };
  }

  #note(subject: string, what: string): void {
    this.#history.push({ at: new Date().toISOString(), subject, what });
    if (this.#history.length > 50) this.#history.shift();
  }

  #recordDecision(decision: ScaleDecision & { action: "up" | "down" }): void {
    this.#decisions.push({ ...decision, at: new Date().toISOString() });
    if (this.#decisions.length > 50) this.#decisions.shift();
    this.#note("cluster", `scale ${decision.action} ${decision.from} -> ${decision.to}: ${decision.reason}`);
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
    this.#down.delete(id);
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
    this.#note(id, `serving (pid ${instance.pid})`);
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
    this.#note(instance.spec.id, "drained and stopped");
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
    this.#note(id, `died (${signal ?? `exit ${code}`}); restarting in ${backoffMs} ms`);
    this.#down.set(id, {
      restarts: this.#restarts.get(id) ?? 0,
      since: new Date(now).toISOString(),
      url: instance.url,
    });
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
    this.#recordDecision(decision);
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

/** One scrape of an instance's /metrics, or null when it does not answer in time. */
async function scrape(url: string): Promise<MetricsSample | null> {
  try {
    const response = await fetch(`${url}/metrics`, { signal: AbortSignal.timeout(SCRAPE_TIMEOUT_MS) });
    if (!response.ok) {
      await response.body?.cancel();
      return null;
    }
    return parseMetrics(await response.text(), Date.now());
  } catch {
    return null;
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
