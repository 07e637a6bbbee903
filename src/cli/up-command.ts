/**
 * `boxoffice up` (and `npm start`): the balancer and N instances as separate processes, supervised;
 * `boxoffice status` prints the running cluster; `boxoffice restart` (or SIGHUP to `up`) replaces the
 * instances one at a time. The cluster's control address lives in <data dir>/cluster.json.
 *
 * Two kinds of output: the supervisor's events (an instance started, died, scaled) go through the
 * logger like every process's; the banner of `up` (store, admin token, ready, how to see the status), the
 * `status` table and the errors of `status`/`restart` are plain text on stdout/stderr, because they are
 * this command's user interface, not logs.
 */
import type { Command } from "commander";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { ClusterStatus } from "../cluster/supervisor.js";
import { resolveAdminToken } from "../config/admin-token.js";
import { CLUSTER_SETTINGS, loadClusterConfig } from "../config/cluster-config.js";
import { SERVER_SETTINGS, loadServerConfig } from "../config/server-config.js";
import type { FlagValues } from "../config/settings.js";
import { flagKey, processEnv } from "../config/settings.js";
import { createLogger } from "../log/logger.js";
import { addSettingOptions } from "./setting-options.js";

const CLI_PATH = fileURLToPath(new URL("./main.js", import.meta.url));
const CLUSTER_FILE = "cluster.json";

/** Server flags that `up` decides per instance instead of forwarding. */
const PER_INSTANCE = new Set(["port", "host", "instance-id", "admin-port", "admin-host"]);

interface ClusterFile {
  pid: number;
  balancerUrl: string;
  controlUrl: string;
  startedAt: string;
}

export function registerUpCommand(program: Command): void {
  const up = addSettingOptions(
    addSettingOptions(
      program.command("up").description("start the balancer and N server instances, supervised"),
      SERVER_SETTINGS,
    ),
    CLUSTER_SETTINGS,
  );
  up.action(async (flags: FlagValues) => {
    const server = loadServerConfig(flags);
    const cluster = loadClusterConfig(flags);
    const { token, generated } = await resolveAdminToken(server.adminToken, server.dataDir);
    // Every instance gets the same settings: the flags given here, and the same data dir and token.
    const serverArgs: string[] = ["--data", server.dataDir];
    for (const setting of Object.values(SERVER_SETTINGS)) {
      if (setting.flag === null || PER_INSTANCE.has(setting.flag) || setting.flag === "data") continue;
      const value = flags[flagKey(setting.flag)];
      if (typeof value === "string") serverArgs.push(`--${setting.flag}`, value);
    }
    const env = { ...processEnv(), BOXOFFICE_ADMIN_TOKEN: token };
    // The banner: plain lines for the person who typed `boxoffice up` (see the header).
    const say = (message: string) =>
      console.log(`${new Date().toISOString().slice(11, 19)} boxoffice: ${message}`);
    // --log-level is the instances' (forwarded to each); the supervisor and the balancer have
    // --cluster-log-level (info: their events are few and are what an operator of `up` watches).
    const log = createLogger(cluster.logLevel, { component: "supervisor" });
    // Loaded here, not at the top, so that `status` and `restart` do not load the supervisor.
    const { Supervisor } = await import("../cluster/supervisor.js");
    const { startControlServer } = await import("../cluster/control-server.js");
    const supervisor = new Supervisor({
      cliPath: CLI_PATH,
      host: server.host,
      port: server.port,
      instancePortBase: cluster.instancePortBase,
      instances: cluster.instances,
      autoscale: cluster.autoscale,
      serverArgs,
      balancerArgs: ["--log-level", cluster.logLevel],
      env,
      adminToken: token,
      logDir: join(server.dataDir, "logs"),
      log,
    });
    let control: Awaited<ReturnType<typeof startControlServer>> | undefined;
    let stopping = false;
    const stop = async (signal: string) => {
      if (stopping) return;
      stopping = true;
      log.info(`${signal}: stopping every process (in-flight requests finish first)`);
      await control?.close();
      await supervisor.close();
      await rm(join(server.dataDir, CLUSTER_FILE), { force: true });
      log.info("stopped");
      process.exit(0);
    };
    process.on("SIGTERM", () => void stop("SIGTERM"));
    process.on("SIGINT", () => void stop("SIGINT"));
    process.on("SIGHUP", () => void supervisor.rollingRestart());

    try {
      // The control server first: the balancer is told its address, for the dashboard's cluster calls.
      control = await startControlServer(supervisor, token, log, cluster.metricsHost, cluster.metricsPort);
      await supervisor.start(control.url);
    } catch (error) {
      log.error({ err: error }, `could not start: ${(error as Error).message}`);
      await control?.close();
      await supervisor.close();
      process.exit(1);
    }
    const file: ClusterFile = {
      pid: process.pid,
      balancerUrl: supervisor.balancerUrl,
      controlUrl: control.url,
      startedAt: new Date().toISOString(),
    };
    await writeFile(join(server.dataDir, CLUSTER_FILE), `${JSON.stringify(file, null, 2)}\n`);
    const store = server.store === "sqlite" ? `SQLite (${server.layout}) in ${server.dataDir}` : "PostgreSQL";
    say(`store: ${store}; lock: ${server.lock.kind} (scope ${server.lockScope})`);
    if (generated)
      say(`admin token (printed once, kept in ${join(server.dataDir, "admin-token")}): ${token}`);
    const scaling = cluster.autoscale
      ? `autoscaling ${cluster.autoscale.minInstances}..${cluster.autoscale.maxInstances}`
      : "fixed size";
    say(`ready: ${supervisor.balancerUrl} (balancer, ${cluster.instances} instances, ${scaling})`);
    say(`status: boxoffice status --data ${server.dataDir}; Ctrl-C stops everything`);
    say(`dashboard: ${supervisor.balancerUrl}/dashboard (sign in with the admin token)`);
  });

  // `status` and `restart` find the cluster by its data directory: the server's --data setting.
  const dataOnly = { dataDir: SERVER_SETTINGS.dataDir };
  addSettingOptions(
    program
      .command("status")
      .description("print the running cluster: instances, health, in-flight, requests, restarts"),
    dataOnly,
  )
    .option("--json", "print the raw JSON")
    .action(async (flags: FlagValues & { json?: boolean }) => {
      // The table (or the JSON) is this command's output, plain text, not a log.
      const status = await fetchCluster<ClusterStatus>(flags, "GET", "/status");
      if (flags.json) {
        console.log(JSON.stringify(status, null, 2));
        return;
      }
      console.log(
        `balancer  ${status.balancer.url}  ${status.balancer.state}  pid ${status.balancer.pid ?? "-"}`,
      );
      console.log("instance  state     health    in-flight  requests  failures  restarts  pid     url");
      for (const i of status.instances) {
        const b = i.backend;
        console.log(
          [
            i.id.padEnd(9),
            i.state.padEnd(9),
            (b?.state ?? "-").padEnd(9),
            String(b?.active ?? "-").padStart(9),
            String(b?.requests ?? "-").padStart(9),
            String(b?.failures ?? "-").padStart(9),
            String(i.restarts).padStart(9),
            String(i.pid ?? "-").padEnd(7),
            i.url,
          ].join(" "),
        );
      }
      if (status.autoscale) {
        const a = status.autoscale;
        console.log(
          `autoscale ${a.minInstances}..${a.maxInstances}, target ${a.targetInFlight} in flight per instance`,
        );
        for (const d of a.decisions.slice(-10)) {
          if (d.action !== "none") console.log(`  ${d.at} ${d.action} ${d.from} -> ${d.to}: ${d.reason}`);
        }
      }
    });

  addSettingOptions(
    program
      .command("restart")
      .description("rolling restart: replace the instances one at a time, each drained first"),
    dataOnly,
  ).action(async (flags: FlagValues) => {
    await fetchCluster(flags, "POST", "/restart");
    console.log("boxoffice: rolling restart started; follow it with `boxoffice status`");
  });
}

async function fetchCluster<T>(flags: FlagValues, method: string, path: string): Promise<T> {
  const server = loadServerConfig({ data: flags.data });
  let file: ClusterFile;
  try {
    file = JSON.parse(await readFile(join(server.dataDir, CLUSTER_FILE), "utf8")) as ClusterFile;
  } catch {
    // Plain: an answer to the person who typed `boxoffice status`, not a log line.
    console.error(`boxoffice: no cluster is running with data directory ${server.dataDir}`);
    process.exit(1);
  }
  const { token } = await resolveAdminToken(server.adminToken, server.dataDir);
  const response = await fetch(`${file.controlUrl}${path}`, {
    method,
    headers: { authorization: `Bearer ${token}` },
    signal: AbortSignal.timeout(10_000),
  }).catch(() => null);
  if (!response?.ok) {
    console.error(`boxoffice: the cluster (pid ${file.pid}) did not answer at ${file.controlUrl}`);
    process.exit(1);
  }
  return (await response.json()) as T;
}
