/**
 * The image from the Containerfile, built and run with podman: it builds on a Node.js base made without
 * any registry (deploy/container/make-node-base.sh: debootstrap and the host's node, cached in podman's
 * storage, so only the first run pays for it; the build's layers are cached too), runs as a non-root
 * user with no dev dependency and no TypeScript source, serves a purchase on SQLite, passes its own
 * HEALTHCHECK, and exits 0 on SIGTERM.
 *
 * Needs root, podman, runc and debootstrap (scripts/install-system-deps.sh installs them): skipped with
 * the reason when one is missing, a failure under CI=true. runc, not crun, because crun refuses hosts
 * with cgroups in hybrid mode; the rlimits are the host's own hard limits, which podman's defaults exceed
 * on some hosts.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { join } from "node:path";
import { HttpClient } from "../support/http-client.js";
import { E2E_ADMIN_TOKEN } from "../support/server-process.js";
import { skipUnlessInstalled } from "../support/tools.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const IMAGE = "localhost/boxoffice:test";

function skipReason(): string | undefined {
  // Not yet seen passing end to end on this machine (the first build was still compiling better-sqlite3
  // at the deadline): opt in until it has, then drop this gate so that it runs in every npm test.
  if (process.env.BOXOFFICE_TEST_IMAGE !== "1")
    return "set BOXOFFICE_TEST_IMAGE=1 to build and run the image";
  const missing =
    skipUnlessInstalled("podman", "--version") ??
    skipUnlessInstalled("runc", "--version") ??
    skipUnlessInstalled("debootstrap", "--version");
  if (missing) return missing;
  if (process.getuid?.() !== 0) {
    const reason = "building the base image needs root (debootstrap, rootful podman)";
    if (process.env.CI === "true") throw new Error(`${reason}; under CI=true that is a failure, not a skip`);
    return reason;
  }
  return undefined;
}

function run(command: string, args: string[], timeoutMs = 15 * 60_000): string {
  const result = spawnSync(command, args, { cwd: ROOT, encoding: "utf8", timeout: timeoutMs });
  assert.equal(result.status, 0, `${command} ${args.join(" ")}\n${result.stdout}\n${result.stderr}`);
  return result.stdout.trim();
}

const hardLimit = (flag: string) =>
  spawnSync("sh", ["-c", `ulimit -H${flag}`], { encoding: "utf8" }).stdout.trim();
const ULIMITS = ["--ulimit", `nofile=${hardLimit("n")}:${hardLimit("n")}`, "--ulimit", "nproc=4096:4096"];

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}

const skip = skipReason();
describe("the container image (Containerfile)", { skip, timeout: 30 * 60_000 }, () => {
  const name = `boxoffice-test-${randomBytes(4).toString("hex")}`;
  const http = new HttpClient();

  before(() => {
    const base = run(join(ROOT, "deploy", "container", "make-node-base.sh"), [])
      .split("\n")
      .at(-1)!;
    run("podman", [
      "build",
      "--runtime",
      "runc",
      "--network",
      "host",
      ...ULIMITS,
      "--format",
      "docker",
      "--build-arg",
      `NODE_IMAGE=${base}`,
      "-t",
      IMAGE,
      "-f",
      "Containerfile",
      ".",
    ]);
  });
  after(async () => {
    spawnSync("podman", ["--runtime", "runc", "rm", "-f", name], { encoding: "utf8" });
    await http.close();
  });

  it("holds the built app and its production dependencies only, for a non-root user", () => {
    const config = JSON.parse(run("podman", ["image", "inspect", IMAGE]))[0].Config as {
      User: string;
      Entrypoint: string[];
      Healthcheck?: { Test: string[] };
    };
    assert.equal(config.User, "10001:10001");
    assert.deepEqual(config.Entrypoint, ["node", "/app/dist/src/cli/main.js"]);
    assert.ok(config.Healthcheck?.Test.join(" ").includes("BOXOFFICE_HEALTH_PATH"));
    const look = (script: string) =>
      run("podman", [
        "--runtime",
        "runc",
        "run",
        "--rm",
        ...ULIMITS,
        "--entrypoint",
        "node",
        IMAGE,
        "-e",
        script,
      ]);
    assert.equal(
      look("try { require.resolve('typescript'); console.log('dev') } catch { console.log('none') }"),
      "none",
    );
    assert.equal(
      look("try { require.resolve('better-sqlite3'); console.log('yes') } catch { console.log('no') }"),
      "yes",
    );
    assert.equal(
      look("console.log(require('fs').existsSync('/app/src') || require('fs').existsSync('/app/test'))"),
      "false",
    );
    assert.equal(look("console.log(process.getuid())"), "10001");
  });

  it("migrates, serves a purchase, passes its health check and stops cleanly on SIGTERM", async () => {
    const port = await freePort();
    const env = ["-e", `BOXOFFICE_PORT=${port}`, "-e", `BOXOFFICE_ADMIN_TOKEN=${E2E_ADMIN_TOKEN}`];
    const volume = `${name}-data`;
    const common = [
      "--runtime",
      "runc",
      "run",
      ...ULIMITS,
      "--network",
      "host",
      "-v",
      `${volume}:/var/lib/boxoffice`,
      ...env,
    ];
    run("podman", [...common, "--rm", IMAGE, "migrate"]);
    run("podman", [...common, "-d", "--name", name, IMAGE, "server", "--migrate", "false"]);
    const url = `http://127.0.0.1:${port}`;
    let ready = 0;
    for (let attempt = 0; attempt < 100 && ready !== 200; attempt++) {
      ready = await http.call(url, "/ready").then(
        (answer) => answer.status,
        () => 0,
      );
      if (ready !== 200) await new Promise((resolve) => setTimeout(resolve, 200));
    }
    assert.equal(ready, 200, run("podman", ["logs", name]));
    const event = await http.call<{ id: string }>(url, "/v1/events", {
      admin: true,
      body: { name: "Container night", capacity: 5, maxPerOrder: 2 },
    });
    assert.equal(event.status, 201, event.text);
    const order = await http.call<{ quantity: number }>(url, `/v1/events/${event.body.id}/orders`, {
      body: { customerId: "c-1", quantity: 2 },
      headers: { "idempotency-key": "container-1" },
    });
    assert.equal(order.status, 201, order.text);
    assert.equal(order.body.quantity, 2);
    run("podman", ["healthcheck", "run", name]);
    run("podman", ["stop", "--time", "20", name]);
    assert.equal(run("podman", ["inspect", name, "--format", "{{.State.ExitCode}}"]), "0");
    spawnSync("podman", ["volume", "rm", "-f", volume]);
  });
});
