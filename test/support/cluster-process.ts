/**
 * Starts `boxoffice up` as a real process for the cluster tests, waits for its "ready" line, and offers
 * the CLI's own `status`/`restart` commands. Every cluster is stopped (SIGTERM, then SIGKILL) in stopAll().
 */
import { spawn, execFile, type ChildProcess } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { promisify } from "node:util";
import { CLI_PATH, E2E_ADMIN_TOKEN } from "./server-process.js";
import type { ClusterStatus } from "../../src/cluster/supervisor.js";

const run = promisify(execFile);
const running = new Set<ClusterProcess>();

export class ClusterProcess {
  readonly url: string;
  readonly lines: string[] = [];
  readonly #child: ChildProcess;
  readonly #dataDir: string;
  readonly #exit: Promise<unknown>;

  private constructor(child: ChildProcess, port: number, dataDir: string) {
    this.#child = child;
    this.url = `http://127.0.0.1:${port}`;
    this.#dataDir = dataDir;
    this.#exit = once(child, "exit");
    running.add(this);
  }

  static async start(dataDir: string, port: number, flags: string[]): Promise<ClusterProcess> {
    const child = spawn(
      process.execPath,
      [
        CLI_PATH,
        "up",
        "--data",
        dataDir,
        "--port",
        String(port),
        // Several clusters may run at once: the supervisor's metrics port is any free one.
        "--metrics-port",
        "0",
        "--log-level",
        "warn",
        ...flags,
      ],
      { env: { ...process.env, BOXOFFICE_ADMIN_TOKEN: E2E_ADMIN_TOKEN }, stdio: ["ignore", "pipe", "pipe"] },
    );
    const cluster = new ClusterProcess(child, port, dataDir);
    const ready = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`up did not get ready:\n${cluster.lines.join("\n")}`)),
        60_000,
      );
      for (const stream of [child.stdout, child.stderr]) {
        if (!stream) continue;
        createInterface({ input: stream }).on("line", (line) => {
          cluster.lines.push(line);
          if (line.includes("boxoffice: ready:")) {
            clearTimeout(timer);
            resolve();
          }
        });
      }
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`up exited with ${code}:\n${cluster.lines.join("\n")}`));
      });
    });
    await ready;
    return cluster;
  }

  get pid(): number {
    return this.#child.pid ?? -1;
  }

  async status(): Promise<ClusterStatus> {
    const { stdout } = await run(process.execPath, [CLI_PATH, "status", "--data", this.#dataDir, "--json"], {
      env: { ...process.env, BOXOFFICE_ADMIN_TOKEN: E2E_ADMIN_TOKEN },
    });
    return JSON.parse(stdout) as ClusterStatus;
  }

  async restart(): Promise<void> {
    await run(process.execPath, [CLI_PATH, "restart", "--data", this.#dataDir], {
      env: { ...process.env, BOXOFFICE_ADMIN_TOKEN: E2E_ADMIN_TOKEN },
    });
  }

  /** SIGTERM, and the time it took for `up` to exit (SIGKILL after `timeoutMs`). */
  async stop(timeoutMs = 20_000): Promise<number> {
    const started = Date.now();
    if (this.#child.exitCode === null && this.#child.signalCode === null) {
      this.#child.kill("SIGTERM");
      const timer = setTimeout(() => this.#child.kill("SIGKILL"), timeoutMs);
      await this.#exit;
      clearTimeout(timer);
    }
    running.delete(this);
    return Date.now() - started;
  }
}

export async function stopAllClusters(): Promise<void> {
  await Promise.all([...running].map((c) => c.stop()));
}
