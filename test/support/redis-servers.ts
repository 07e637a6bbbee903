/**
 * Throwaway redis-server processes for the lock tests, on the lock area's spare ports (16380–16389),
 * with no persistence: killing one loses its data, as a crashed lock server would. Never touches the
 * shared Redis on 6379.
 */
import { spawn, type ChildProcess } from "node:child_process";
import net from "node:net";
import { setTimeout as sleep } from "node:timers/promises";

/** How long a started server has to answer before the test fails. */
const START_TIMEOUT_MS = 10_000;

function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host: "127.0.0.1", port });
    const done = (ok: boolean): void => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(500, () => done(false));
    socket.once("connect", () => done(true));
    socket.once("error", () => done(false));
  });
}

export class RedisServer {
  readonly port: number;
  #process: ChildProcess | null = null;

  constructor(port: number) {
    this.port = port;
  }

  get url(): string {
    return `redis://127.0.0.1:${this.port}`;
  }

  get running(): boolean {
    return this.#process !== null;
  }

  async start(): Promise<void> {
    if (this.#process !== null) return;
    if (await answers(this.port)) throw new Error(`port ${this.port} is already taken`);
    const child = spawn(
      "redis-server",
      [
        "--port",
        String(this.port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",
        "no",
        "--daemonize",
        "no",
      ],
      { stdio: "ignore" },
    );
    this.#process = child;
    const deadline = Date.now() + START_TIMEOUT_MS;
    while (!(await answers(this.port))) {
      if (child.exitCode !== null || Date.now() > deadline) {
        await this.kill();
        throw new Error(`redis-server on port ${this.port} did not start`);
      }
      await sleep(20);
    }
  }

  /** SIGKILL: the server dies at once, with all its keys. */
  async kill(): Promise<void> {
    const child = this.#process;
    this.#process = null;
    if (child === null || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
    child.kill("SIGKILL");
    await exited;
  }
}

/** Starts `count` servers on consecutive ports from `firstPort`. */
export async function startRedisServers(firstPort: number, count: number): Promise<RedisServer[]> {
  const servers = Array.from({ length: count }, (_, index) => new RedisServer(firstPort + index));
  try {
    await Promise.all(servers.map((server) => server.start()));
  } catch (error) {
    await Promise.all(servers.map((server) => server.kill()));
    throw error;
  }
  return servers;
}
