/**
 * Real HTTP test servers standing in for boxoffice instances behind the balancer: each answers `/ready`
 * and `/health`, sets `X-Served-By`, and can be made slow, failing or streaming. Run in-process
 * (`startBackend`) or as its own OS process (`spawnBackend`, so a test can kill it for real):
 * `node dist/test/support/backend-fixture.js '{"id":"a","delayMs":5}'` prints `{"port":N}`.
 *
 * Routes: `GET /` (tiny JSON), `GET|POST /work` (waits `delayMs`, then answers; a POST is appended to
 * `logFile` as "<x-request-id> <idempotency-key>" before the wait, and fsynced to `dataFile` when
 * `fsyncPosts`), `GET /sse` (an event every 50 ms), `GET /fail` (500), `POST /echo` (the body back),
 * `POST /fixture/ready` with `{"ready":false}` (makes /ready answer 503).
 */
import { spawn, type ChildProcess } from "node:child_process";
import { appendFileSync, fsyncSync, openSync, writeSync } from "node:fs";
import http from "node:http";
import net, { type AddressInfo } from "node:net";
import { fileURLToPath } from "node:url";

export interface BackendOptions {
  /** Sent as `X-Served-By`. */
  id: string;
  /** Time `/work` waits before it answers. */
  delayMs?: number;
  /** Where each POST to `/work` is logged (appended synchronously, so it survives SIGKILL). */
  logFile?: string;
  /** Purchase-path stand-in: each POST to `/work` appends a record to this file and fsyncs it. */
  dataFile?: string;
  port?: number;
  /** The loopback address to listen on (127.0.0.1 unless given: DNS tests give each its own). */
  host?: string;
}

export interface RunningBackend {
  readonly id: string;
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

function handler(options: BackendOptions): http.RequestListener {
  let ready = true;
  let requests = 0;
  const dataFd = options.dataFile === undefined ? undefined : openSync(options.dataFile, "a");
  return (req, res) => {
    requests++;
    res.setHeader("x-served-by", options.id);
    const url = req.url ?? "/";
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      const body = Buffer.concat(chunks);
      const json = (status: number, value: unknown) => {
        const text = JSON.stringify(value);
        res.writeHead(status, {
          "content-type": "application/json",
          "content-length": Buffer.byteLength(text),
        });
        res.end(text);
      };
      if (url === "/ready") return json(ready ? 200 : 503, { status: ready ? "ready" : "not ready" });
      if (url === "/health") return json(200, { status: "ok" });
      if (url === "/") return json(200, { ok: true });
      if (url === "/fixture/stats") return json(200, { id: options.id, requests });
      if (url === "/fixture/ready" && req.method === "POST") {
        ready = (JSON.parse(body.toString("utf8")) as { ready: boolean }).ready;
        return json(200, { ready });
      }
      if (url === "/fail") return json(500, { code: "internal" });
      if (url === "/echo") {
        res.writeHead(200, {
          "content-type": "application/octet-stream",
          "x-seen-headers": JSON.stringify(req.headers),
        });
        return res.end(body);
      }
      if (url === "/sse") {
        res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache" });
        let sent = 0;
        const timer = setInterval(() => res.write(`data: ${options.id} ${sent++}\n\n`), 50);
        res.on("close", () => clearInterval(timer));
        return;
      }
      if (url.startsWith("/work")) {
        if (req.method === "POST") {
          const line = `${String(req.headers["x-request-id"] ?? "-")} ${String(req.headers["idempotency-key"] ?? "-")}\n`;
          if (options.logFile !== undefined) appendFileSync(options.logFile, line);
          if (dataFd !== undefined) {
            writeSync(dataFd, line);
            fsyncSync(dataFd);
          }
        }
        const answer = () =>
          json(req.method === "POST" ? 201 : 200, { servedBy: options.id, at: Date.now() });
        if ((options.delayMs ?? 0) > 0) setTimeout(answer, options.delayMs);
        else answer();
        return;
      }
      json(404, { code: "not_found" });
    });
  };
}

/** Starts a test server in this process. */
export async function startBackend(options: BackendOptions): Promise<RunningBackend> {
  const server = http.createServer(handler(options));
  const host = options.host ?? "127.0.0.1";
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    id: options.id,
    port,
    url: `http://${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A test server in its own process. */
export interface SpawnedBackend extends RunningBackend {
  readonly child: ChildProcess;
  /** SIGKILL: the process dies at once, its connections reset, as a crashed instance would. */
  kill(): Promise<void>;
}

export function spawnBackend(options: BackendOptions): Promise<SpawnedBackend> {
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url), JSON.stringify(options)], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  };
  return new Promise((resolve, reject) => {
    let output = "";
    const timer = setTimeout(() => {
      void kill();
      reject(new Error(`backend ${options.id} did not start`));
    }, 10_000);
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
      const line = output.split("\n")[0];
      if (!output.includes("\n") || line === undefined) return;
      clearTimeout(timer);
      const { port } = JSON.parse(line) as { port: number };
      const url = `http://${options.host ?? "127.0.0.1"}:${port}`;
      resolve({ id: options.id, port, url, child, kill, close: kill });
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`backend ${options.id} exited with ${code}`));
    });
  });
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const options = JSON.parse(process.argv[2] ?? "{}") as BackendOptions;
  const backend = await startBackend(options);
  process.stdout.write(`${JSON.stringify({ port: backend.port })}\n`);
  process.on("SIGTERM", () => void backend.close().then(() => process.exit(0)));
}

/** A `boxoffice lb` in its own process (dist/src/cli/main.js lb), for the end-to-end tests. */
export interface SpawnedBalancer {
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** What the balancer printed to stderr so far (a configuration error, a crash). */
  readonly stderr: () => string;
  /** What it logged on stdout so far: JSON lines (instance down/up, a failed admin call with its error). */
  readonly log: () => string;
  /** SIGTERM, then SIGKILL if it has not exited within 5 s. */
  stop(): Promise<void>;
}

export function spawnBalancer(
  args: string[],
  env: NodeJS.ProcessEnv = {},
  startTimeoutMs = 10_000,
): Promise<SpawnedBalancer> {
  const main = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
  const child = spawn(process.execPath, [main, "lb", "--port", "0", ...args], {
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, ...env },
  });
  let errors = "";
  let output = "";
  child.stderr!.on("data", (chunk: Buffer) => (errors += chunk.toString("utf8")));
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await exited;
    clearTimeout(timer);
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      void stop();
      reject(new Error(`balancer did not start in ${startTimeoutMs} ms: ${errors}`));
    }, startTimeoutMs);
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
      const match = /listening on http:\/\/[^:]+:(\d+)/.exec(output);
      if (!match) return;
      clearTimeout(timer);
      const port = Number(match[1]);
      resolve({
        url: `http://127.0.0.1:${port}`,
        port,
        child,
        stderr: () => errors,
        log: () => output,
        stop,
      });
    });
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`balancer exited with ${code}: ${errors}`));
    });
  });
}

/** A port free right now on 127.0.0.1, for servers that cannot listen on port 0 (HAProxy, nginx). */
export function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

/** A real `boxoffice server` (dist/src/cli/main.js server) in its own process. */
export interface RealInstance {
  readonly id: string;
  readonly url: string;
  readonly port: number;
  readonly child: ChildProcess;
  /** SIGKILL, as a crash. */
  kill(): Promise<void>;
}

/** Starts a real instance on a free port with `dataDir` as its store, and waits until /ready says 200. */
export async function spawnRealInstance(
  id: string,
  dataDir: string,
  adminToken: string,
  args: readonly string[] = [],
): Promise<RealInstance> {
  const port = await freePort();
  const cli = fileURLToPath(new URL("../../src/cli/main.js", import.meta.url));
  const child = spawn(
    process.execPath,
    [cli, "server", "--port", String(port), "--data", dataDir, "--instance-id", id, ...args],
    { stdio: ["ignore", "ignore", "inherit"], env: { ...process.env, BOXOFFICE_ADMIN_TOKEN: adminToken } },
  );
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  const kill = async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
    await exited;
  };
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; attempt < 150; attempt++) {
    if (child.exitCode !== null) throw new Error(`instance ${id} exited with ${child.exitCode}`);
    const ready = await new Promise<boolean>((resolve) => {
      http
        .get(`${url}/ready`, (res) => {
          res.resume();
          resolve(res.statusCode === 200);
        })
        .on("error", () => resolve(false));
    });
    if (ready) return { id, url, port, child, kill };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await kill();
  throw new Error(`instance ${id} never became ready`);
}
