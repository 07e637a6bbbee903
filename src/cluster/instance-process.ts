/**
 * One child process of the cluster (`boxoffice server`, or the balancer `boxoffice lb`), as the
 * supervisor sees it: spawn, wait until it answers, stop gracefully (SIGTERM, then SIGKILL after a grace
 * period). The child gets an IPC channel and exits when it closes, so no process outlives a supervisor
 * that was killed.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";

export interface InstanceSpec {
  /** Stable name shown in status and sent as the instance id (X-Served-By). */
  id: string;
  role: "server" | "lb";
  port: number;
  host: string;
  /** The CLI entry point (dist/src/cli/main.js). */
  cliPath: string;
  /** Further flags for the command (store, lock, data dir, …). */
  args: readonly string[];
  env: NodeJS.ProcessEnv;
}

export type InstanceState = "starting" | "ready" | "draining" | "stopping" | "exited";

export class InstanceProcess {
  readonly spec: InstanceSpec;
  readonly startedAtMs = Date.now();
  state: InstanceState = "starting";
  /** True once stop() was called: its exit is intended, not a crash. */
  stopRequested = false;
  /** Id the balancer gave this instance when it was added, if it was. */
  backendId: string | null = null;
  #child: ChildProcess | null = null;
  #exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }> | null = null;
  /** The last lines the process wrote to stderr, shown when it keeps crashing. */
  readonly lastErrors: string[] = [];

  constructor(spec: InstanceSpec) {
    this.spec = spec;
  }

  get url(): string {
    return `http://${this.spec.host}:${this.spec.port}`;
  }

  get pid(): number | undefined {
    return this.#child?.pid;
  }

  /** Starts the process; `onLine` receives each line it prints (stdout and stderr). */
  spawn(onLine: (line: string, stream: "stdout" | "stderr") => void): void {
    const { cliPath, role, port, host, id } = this.spec;
    const identity = role === "server" ? ["--instance-id", id] : [];
    const args = [cliPath, role, "--port", String(port), "--host", host, ...identity, ...this.spec.args];
    const child = spawn(process.execPath, args, {
      env: this.spec.env,
      stdio: ["ignore", "pipe", "pipe", "ipc"],
    });
    this.#child = child;
    this.#exit = once(child, "exit").then(([code, signal]) => {
      this.state = "exited";
      return { code: code as number | null, signal: signal as NodeJS.Signals | null };
    });
    for (const stream of ["stdout", "stderr"] as const) {
      const source = child[stream];
      if (!source) continue;
      createInterface({ input: source }).on("line", (line) => {
        if (stream === "stderr") {
          this.lastErrors.push(line);
          if (this.lastErrors.length > 20) this.lastErrors.shift();
        }
        onLine(line, stream);
      });
    }
  }

  /** Resolves with the exit code and signal when the process ends. */
  exited(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (!this.#exit) throw new Error(`instance ${this.spec.id} was never spawned`);
    return this.#exit;
  }

  /**
   * Polls until the process serves: an instance's /ready answers 200; the balancer answers at all (its
   * /_lb/health is 503 while it has no instance). False when the process exits or `timeoutMs` passes.
   */
  async waitReady(timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    const path = this.spec.role === "server" ? "/ready" : "/_lb/health";
    while (Date.now() < deadline && this.state !== "exited") {
      try {
        const response = await fetch(`${this.url}${path}`, { signal: AbortSignal.timeout(1000) });
        await response.body?.cancel();
        if (response.ok || this.spec.role === "lb") return true;
      } catch {
        // not listening yet
      }
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    return false;
  }

  /** SIGTERM, then SIGKILL when it has not exited after `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    const child = this.#child;
    this.stopRequested = true;
    if (!child || this.state === "exited") return;
    this.state = "stopping";
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
    try {
      await this.exited();
    } finally {
      clearTimeout(timer);
    }
  }

  /** Kills the process at once (used when the supervisor itself must go). */
  kill(): void {
    if (this.state !== "exited") this.#child?.kill("SIGKILL");
  }
}
