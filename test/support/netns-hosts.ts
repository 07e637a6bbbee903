/**
 * Test hosts on one machine: each a Linux network namespace with its own address on a private bridge
 * that this test run creates (and removes). Traffic between them crosses a real (virtual) network, as
 * between machines, and never leaves this machine. Needs root and iproute2.
 */
import { execFile, spawn, type ChildProcess, type SpawnOptions } from "node:child_process";
import { existsSync } from "node:fs";
import { promisify } from "node:util";

const run = promisify(execFile);

function netnsMissing(): string | undefined {
  if (process.platform !== "linux") return "network namespaces need Linux";
  if (process.getuid?.() !== 0) return "network namespaces need root (ip netns)";
  if (!existsSync("/usr/sbin/ip") && !existsSync("/sbin/ip") && !existsSync("/usr/bin/ip"))
    return "no iproute2 (ip)";
  return undefined;
}

/** Why the test hosts cannot be made here, or undefined when they can; under CI=true a reason is a failure, not a skip. */
export function netnsSkipReason(): string | undefined {
  const reason = netnsMissing();
  if (reason && process.env.CI === "true")
    throw new Error(`${reason}; under CI=true that is a failure, not a skip`);
  return reason;
}

export interface TestHost {
  name: string;
  namespace: string;
  ip: string;
  /** Starts a process inside this host's namespace. */
  spawn(command: string, args: readonly string[], options?: SpawnOptions): ChildProcess;
  /** Runs a command inside this host's namespace and waits for it. */
  exec(command: string, args: readonly string[]): Promise<{ stdout: string; stderr: string }>;
}

export class TestNetwork {
  readonly hosts = new Map<string, TestHost>();
  readonly #bridge: string;
  readonly #prefix: string;
  readonly #subnet: string;
  readonly #children = new Set<ChildProcess>();

  private constructor(bridge: string, prefix: string, subnet: string) {
    this.#bridge = bridge;
    this.#prefix = prefix;
    this.#subnet = subnet;
  }

  /** A bridge with one namespace per host name, each with its own address in a /24 chosen per run. */
  static async create(names: readonly string[]): Promise<TestNetwork> {
    const tag = (process.pid % 10_000).toString(36);
    const third = 100 + (process.pid % 150);
    const network = new TestNetwork(`bobr${tag}`, `bo${tag}`, `10.203.${third}`);
    try {
      await network.#setUp(names);
    } catch (error) {
      await network.destroy();
      throw error;
    }
    return network;
  }

  async #setUp(names: readonly string[]): Promise<void> {
    const ip = (...args: string[]) => run("ip", args);
    await ip("link", "add", this.#bridge, "type", "bridge");
    await ip("addr", "add", `${this.#subnet}.1/24`, "dev", this.#bridge);
    await ip("link", "set", this.#bridge, "up");
    let index = 10;
    for (const name of names) {
      const namespace = `${this.#prefix}-${name}`;
      const outside = `${this.#prefix}${index}a`;
      const inside = `${this.#prefix}${index}b`;
      const address = `${this.#subnet}.${index}`;
      await ip("netns", "add", namespace);
      await ip("link", "add", outside, "type", "veth", "peer", "name", inside);
      await ip("link", "set", outside, "master", this.#bridge);
      await ip("link", "set", outside, "up");
      await ip("link", "set", inside, "netns", namespace);
      await ip("-n", namespace, "addr", "add", `${address}/24`, "dev", inside);
      await ip("-n", namespace, "link", "set", inside, "up");
      await ip("-n", namespace, "link", "set", "lo", "up");
      const children = this.#children;
      this.hosts.set(name, {
        name,
        namespace,
        ip: address,
        spawn(command, args, options = {}) {
          const child = spawn("ip", ["netns", "exec", namespace, command, ...args], options);
          children.add(child);
          child.once("exit", () => children.delete(child));
          return child;
        },
        exec: (command, args) => run("ip", ["netns", "exec", namespace, command, ...args]),
      });
      index++;
    }
  }

  host(name: string): TestHost {
    const host = this.hosts.get(name);
    if (!host) throw new Error(`no test host ${name}`);
    return host;
  }

  /** Kills every process started in the hosts, then removes the namespaces and the bridge. */
  async destroy(): Promise<void> {
    for (const child of this.#children) child.kill("SIGKILL");
    for (const host of this.hosts.values()) {
      // Anything left inside (a daemon that forked) goes with its namespace's processes.
      const pids = await run("ip", ["netns", "pids", host.namespace]).then(
        (r) => r.stdout.split(/\s+/).filter(Boolean),
        () => [],
      );
      for (const pid of pids) {
        try {
          process.kill(Number(pid), "SIGKILL");
        } catch {
          // already gone
        }
      }
      await run("ip", ["netns", "del", host.namespace]).catch(() => undefined);
    }
    await run("ip", ["link", "del", this.#bridge]).catch(() => undefined);
  }
}
