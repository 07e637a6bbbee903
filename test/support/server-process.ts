/**
 * Starts `boxoffice server` from the built CLI as a real OS process on port 0 and learns its URL from
 * the "ready" log line. Every process started here is killed by `stopAll()` (call it in `after`).
 */
import { spawn } from "node:child_process";
import type { ChildProcess } from "node:child_process";
import { fileURLToPath } from "node:url";
import { createInterface } from "node:readline";

export const CLI_PATH = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
export const E2E_ADMIN_TOKEN = "e2e-admin-token-0123456789abcdef";

export interface ServerProcessOptions {
  dataDir: string;
  instanceId: string;
  layout?: "single" | "per-event";
  /** More `--flag value` arguments. */
  args?: string[];
  env?: Record<string, string>;
  startTimeoutMs?: number;
  /** The script to run instead of the CLI (a test entry that wraps something, then runs the CLI). */
  entry?: string;
}

const running = new Set<ServerProcess>();

export class ServerProcess {
  readonly instanceId: string;
  readonly url: string;
  readonly #child: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Everything the process wrote, for failure messages. */
  readonly output: string[];

  private constructor(
    instanceId: string,
    url: string,
    child: ChildProcess,
    exited: ServerProcess["exited"],
    output: string[],
  ) {
    this.instanceId = instanceId;
    this.url = url;
    this.#child = child;
    this.exited = exited;
    this.output = output;
  }

  get pid(): number | undefined {
    return this.#child.pid;
  }

  static async start(options: ServerProcessOptions): Promise<ServerProcess> {
    const args = [
      options.entry ?? CLI_PATH,
      "server",
      "--port",
      "0",
      "--host",
      "127.0.0.1",
      "--data",
      options.dataDir,
      "--layout",
      options.layout ?? "per-event",
      "--instance-id",
      options.instanceId,
      "--log-level",
      "info",
      ...(options.args ?? []),
    ];
    const child = spawn(process.execPath, args, {
      env: { ...process.env, BOXOFFICE_ADMIN_TOKEN: E2E_ADMIN_TOKEN, ...options.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    const output: string[] = [];
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.once("exit", (code, signal) => resolve({ code, signal })),
    );
    child.stderr?.on("data", (chunk: Buffer) => output.push(chunk.toString()));
    const lines = createInterface({ input: child.stdout! });
    const timeoutMs = options.startTimeoutMs ?? 20_000;
    const url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => fail(new Error(`server did not start in ${timeoutMs} ms`)), timeoutMs);
      const fail = (error: Error) => {
        clearTimeout(timer);
        child.kill("SIGKILL");
        reject(new Error(`${error.message}\n${output.join("")}`));
      };
      lines.on("line", (line) => {
        output.push(`${line}\n`);
        if (!line.includes("boxoffice server ready")) return;
        clearTimeout(timer);
        resolve((JSON.parse(line) as { url: string }).url);
      });
      void exited.then(({ code, signal }) => fail(new Error(`server exited early (${code ?? signal})`)));
    });
    // Keep draining stdout so that the child never blocks on a full pipe.
    lines.on("line", (line) => {
      if (output.length < 2000) output.push(`${line}\n`);
    });
    const server = new ServerProcess(options.instanceId, url, child, exited, output);
    running.add(server);
    void exited.then(() => running.delete(server));
    return server;
  }

  kill(signal: NodeJS.Signals): void {
    this.#child.kill(signal);
  }

  /** SIGTERM, then SIGKILL if it has not exited within `graceMs`; resolves with how it exited. */
  async stop(graceMs = 15_000): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return this.exited;
    this.#child.kill("SIGTERM");
    const timer = setTimeout(() => this.#child.kill("SIGKILL"), graceMs);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }
}

/** Stops every server process still running (for `after` hooks). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((server) => server.stop(5000)));
}
