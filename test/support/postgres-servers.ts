/**
 * Throwaway servers for the PostgreSQL suites: a PostgreSQL cluster of their own (so that a test can
 * restart it without touching the shared one on 5432) and a PgBouncer in transaction mode. Each lives in a
 * temp directory removed by `stop()`. Both refuse to run as root, so under root they run as the
 * `postgres` user through runuser.
 */
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";

const run = promisify(execFile);
const PG_BIN = process.env.BOXOFFICE_TEST_PG_BIN ?? "/usr/lib/postgresql/15/bin";
const PGBOUNCER = process.env.BOXOFFICE_TEST_PGBOUNCER ?? "/usr/sbin/pgbouncer";
const asRoot = process.getuid?.() === 0;

/** Why the throwaway servers cannot run here, or undefined when they can. */
function serversMissing(): string | undefined {
  if (!existsSync(join(PG_BIN, "pg_ctl"))) return `no PostgreSQL binaries in ${PG_BIN}`;
  if (!existsSync(PGBOUNCER))
    return `no PgBouncer at ${PGBOUNCER} (scripts/install-system-deps.sh installs it)`;
  return undefined;
}

/** Why the throwaway servers cannot run here, or undefined when they can; under CI=true a reason is a failure, not a skip. */
export function serversSkipReason(): string | undefined {
  const reason = serversMissing();
  if (reason && process.env.CI === "true")
    throw new Error(`${reason}; under CI=true that is a failure, not a skip`);
  return reason;
}

/**
 * Why a throwaway PostgreSQL server (no PgBouncer) cannot run here, or undefined when it can; under
 * CI=true a reason is a failure, not a skip.
 */
export function postgresServerSkipReason(): string | undefined {
  const reason = existsSync(join(PG_BIN, "pg_ctl")) ? undefined : `no PostgreSQL binaries in ${PG_BIN}`;
  if (reason && process.env.CI === "true")
    throw new Error(`${reason}; under CI=true that is a failure, not a skip`);
  return reason;
}

/** A command line, run as `postgres` when we are root. */
function command(file: string, args: string[]): [string, string[]] {
  return asRoot ? ["runuser", ["-u", "postgres", "--", file, ...args]] : [file, args];
}

/** A temp directory the servers can write to (owned by `postgres` when we are root). */
async function tempDirFor(name: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), `boxoffice-${name}-`));
  if (asRoot) {
    const uid = Number((await run("id", ["-u", "postgres"])).stdout.trim());
    const gid = Number((await run("id", ["-g", "postgres"])).stdout.trim());
    chownSync(dir, uid, gid);
  }
  return dir;
}

/**
 * A port in [from, to] that nothing listens on right now, tried from a random place in the range, so that
 * two test runs on one machine rarely pick the same one. (PostgreSQL and PgBouncer need a fixed port:
 * they cannot be given port 0.)
 */
export async function freePortIn(from: number, to: number): Promise<number> {
  const count = to - from + 1;
  const offset = Math.floor(Math.random() * count);
  for (let i = 0; i < count; i++) {
    const port = from + ((offset + i) % count);
    const free = await new Promise<boolean>((resolve) => {
      const server = net.createServer();
      server.once("error", () => resolve(false));
      server.listen({ host: "127.0.0.1", port, exclusive: true }, () => server.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error(`no free port in ${from}-${to}`);
}

/** Resolves once something accepts TCP connections on 127.0.0.1:port, or rejects after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect({ host: "127.0.0.1", port });
      socket.setTimeout(500, () => {
        socket.destroy();
        resolve(false);
      });
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`nothing listens on 127.0.0.1:${port} after ${timeoutMs} ms`);
}

export interface ThrowawayPostgres {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/postgres */
  url: string;
  /**
   * Stops the server: "fast" rolls running transactions back and checkpoints; "immediate" is a crash
   * (no checkpoint: what was committed must come back from the write-ahead log).
   */
  stopServer(mode: "fast" | "immediate"): Promise<void>;
  /** Starts it again on the same port and data. */
  startServer(): Promise<void>;
  /** Stops it for good and removes its files; idempotent. */
  stop(): Promise<void>;
}

/** A PostgreSQL cluster of its own on `port`, trust auth on loopback, fsync on. */
export async function startThrowawayPostgres(port: number): Promise<ThrowawayPostgres> {
  const dir = await tempDirFor("pg");
  const data = join(dir, "data");
  const pgCtl = join(PG_BIN, "pg_ctl");
  await run(
    ...command(join(PG_BIN, "initdb"), [
      "-D",
      data,
      "-U",
      "postgres",
      "--auth=trust",
      "-E",
      "UTF8",
      "--no-sync",
    ]),
  );
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c max_connections=40 -c shared_buffers=32MB`;
  const startServer = async () => {
    await run(
      ...command(pgCtl, ["-D", data, "-o", options, "-l", join(dir, "log"), "-w", "-t", "30", "start"]),
    );
    await waitForPort(port);
  };
  const stopServer = async (mode: "fast" | "immediate") => {
    await run(...command(pgCtl, ["-D", data, "-m", mode, "-w", "-t", "30", "stop"]));
  };
  await startServer();
  let stopped = false;
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    startServer,
    stopServer,
    async stop() {
      if (stopped) return;
      stopped = true;
      await run(...command(pgCtl, ["-D", data, "-m", "immediate", "-w", "-t", "30", "stop"])).catch(
        () => undefined,
      );
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface PgBouncer {
  port: number;
  /** postgres://postgres@127.0.0.1:<port>/<database> */
  url: string;
  /** Stops PgBouncer and removes its files; idempotent. */
  stop(): Promise<void>;
}

/**
 * PgBouncer on `port` in transaction mode in front of 127.0.0.1:<targetPort>/<database>: a server
 * connection is lent for one transaction at a time, so the store must keep no session state.
 */
export async function startPgBouncer(
  port: number,
  target: { port: number; database: string },
  poolSize = 10,
): Promise<PgBouncer> {
  const dir = await tempDirFor("pgbouncer");
  const ini = join(dir, "pgbouncer.ini");
  writeFileSync(join(dir, "users.txt"), '"postgres" ""\n');
  writeFileSync(
    ini,
    [
      "[databases]",
      `${target.database} = host=127.0.0.1 port=${target.port} dbname=${target.database}`,
      "[pgbouncer]",
      "listen_addr = 127.0.0.1",
      `listen_port = ${port}`,
      `unix_socket_dir = ${dir}`,
      "auth_type = trust",
      `auth_file = ${join(dir, "users.txt")}`,
      "pool_mode = transaction",
      `default_pool_size = ${poolSize}`,
      "max_client_conn = 200",
      "ignore_startup_parameters = extra_float_digits",
      `logfile = ${join(dir, "pgbouncer.log")}`,
      "",
    ].join("\n"),
  );
  const [file, args] = command(PGBOUNCER, [ini]);
  const child: ChildProcess = spawn(file, args, { stdio: "ignore" });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  try {
    await waitForPort(port);
  } catch (error) {
    child.kill("SIGTERM");
    throw error;
  }
  let stopped = false;
  return {
    port,
    url: `postgres://postgres@127.0.0.1:${port}/${target.database}`,
    async stop() {
      if (stopped) return;
      stopped = true;
      // runuser forwards SIGTERM to pgbouncer, which then exits; SIGKILL if it lingers.
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
      await exited;
      clearTimeout(timer);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
