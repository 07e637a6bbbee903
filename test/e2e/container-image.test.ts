/**
 * The image from the Containerfile, built and run with podman: it builds on a Node.js base made without
 * any registry (deploy/container/make-node-base.sh: debootstrap and the host's node, cached in podman's
 * storage, so only the first run pays for it: 27 minutes on this busy 2-core machine, about 1m30s for the whole
 * file once cached; the build's layers are cached too), runs as a non-root
 * user with no dev dependency and no TypeScript source, serves a purchase on SQLite, passes its own
 * HEALTHCHECK, and exits 0 on SIGTERM; then a small cluster of its containers as compose runs it:
 * `migrate` as the schema's owner, two instances on PostgreSQL as a role without DDL rights
 * (deploy/postgres/roles.sql) with `--migrate false`, and the balancer in front, selling exactly the
 * capacity to more buyers than it has.
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
import pg from "pg";
import { HttpClient } from "../support/http-client.js";
import { dropSchema, freshSchemaName } from "../support/postgres-test-store.js";
import { E2E_ADMIN_TOKEN } from "../support/server-process.js";
import { postgresSkip, TEST_POSTGRES_URL } from "../support/services.js";
import { skipUnlessInstalled } from "../support/tools.js";

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
const IMAGE = "localhost/boxoffice:test";

function skipReason(): string | undefined {
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

function run(command: string, args: string[], timeoutMs = 40 * 60_000): string {
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
describe("the container image (Containerfile)", { skip, timeout: 60 * 60_000 }, () => {
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
    spawnSync("podman", ["rm", "-f", "-v", name], { encoding: "utf8" });
    spawnSync("podman", ["volume", "rm", "-f", `${name}-data`], { encoding: "utf8" });
    await http.close();
  });

  it("holds the built app and its production dependencies only, for a non-root user", () => {
    type Inspected = {
      Config: { User: string; Entrypoint: string[]; Healthcheck?: { Test: string[] } };
      Healthcheck?: { Test: string[] };
    };
    const [inspected] = JSON.parse(run("podman", ["image", "inspect", IMAGE])) as Inspected[];
    assert.ok(inspected);
    assert.equal(inspected.Config.User, "10001:10001");
    assert.deepEqual(inspected.Config.Entrypoint, ["node", "/app/dist/src/cli/main.js"]);
    // podman shows the HEALTHCHECK beside Config, docker inside it.
    const healthcheck = inspected.Healthcheck ?? inspected.Config.Healthcheck;
    assert.ok(healthcheck?.Test.join(" ").includes("BOXOFFICE_HEALTH_PATH"));
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
    // No compiler came along from the build stage.
    assert.equal(look("console.log(require('fs').existsSync('/usr/bin/g++'))"), "false");
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
  });

  it("a cluster of containers: migrate as the owner, two instances as a role without DDL, the balancer", async (t) => {
    const pgSkip = await postgresSkip();
    if (pgSkip) return t.skip(pgSkip);
    const schema = freshSchemaName("image");
    const role = `boxoffice_img_${randomBytes(4).toString("hex")}`;
    const owner = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await owner.connect();
    try {
      const { rows } = await owner.query<{ user: string }>("SELECT current_user AS user");
      run(
        "psql",
        [
          "-X",
          "-q",
          "-v",
          `owner=${rows[0]!.user}`,
          "-v",
          `app_role=${role}`,
          "-v",
          "app_password=unused",
        ].concat([
          "-v",
          `schema=${schema}`,
          "-f",
          join(ROOT, "deploy", "postgres", "roles.sql"),
          TEST_POSTGRES_URL,
        ]),
      );
      const ownerUrl = new URL(TEST_POSTGRES_URL);
      ownerUrl.searchParams.set("schema", schema);
      const appUrl = new URL(ownerUrl);
      appUrl.username = role;
      const [lbPort, ...serverPorts] = await Promise.all([freePort(), freePort(), freePort()]);
      const base = [
        "--runtime",
        "runc",
        "run",
        ...ULIMITS,
        "--network",
        "host",
        "-e",
        `BOXOFFICE_ADMIN_TOKEN=${E2E_ADMIN_TOKEN}`,
      ];
      run("podman", [...base, "--rm", "-e", `BOXOFFICE_STORE=${ownerUrl}`, IMAGE, "migrate"]);
      serverPorts.forEach((port, i) => {
        const env = [
          "-e",
          `BOXOFFICE_STORE=${appUrl}`,
          "-e",
          "BOXOFFICE_MIGRATE=false",
          "-e",
          `BOXOFFICE_PORT=${port}`,
        ];
        run("podman", [
          ...base,
          "-d",
          "--name",
          `${name}-s${i}`,
          ...env,
          IMAGE,
          "server",
          "--lock",
          "postgres",
          "--instance-id",
          `img-${i}`,
        ]);
      });
      // As a compose file's depends_on (service_healthy) would: the balancer counts an instance as up until
      // its first health check says otherwise, so it starts once both instances answer /ready.
      for (const port of serverPorts) {
        let ready = false;
        for (let attempt = 0; attempt < 150 && !ready; attempt++) {
          ready = await http.call(`http://127.0.0.1:${port}`, "/ready").then(
            (answer) => answer.status === 200,
            () => false,
          );
          if (!ready) await new Promise((resolve) => setTimeout(resolve, 200));
        }
        assert.ok(ready, run("podman", ["logs", `${name}-s${serverPorts.indexOf(port)}`]));
      }
      const backends = serverPorts.flatMap((port) => ["--backend", `http://127.0.0.1:${port}`]);
      const lbEnv = ["-e", `BOXOFFICE_PORT=${lbPort}`, "-e", "BOXOFFICE_HEALTH_PATH=/_lb/health"];
      run("podman", [...base, "-d", "--name", `${name}-lb`, ...lbEnv, IMAGE, "lb", ...backends]);
      const url = `http://127.0.0.1:${lbPort}`;
      let up = 0;
      for (let attempt = 0; attempt < 150 && up < 2; attempt++) {
        up = await http.call<{ up?: number }>(url, "/_lb/health").then(
          (answer) => answer.body.up ?? 0,
          () => 0,
        );
        if (up < 2) await new Promise((resolve) => setTimeout(resolve, 200));
      }
      assert.equal(up, 2, run("podman", ["logs", `${name}-s0`]));
      const event = await http.call<{ id: string }>(url, "/v1/events", {
        admin: true,
        body: { name: "Container cluster", capacity: 10, maxPerOrder: 1 },
      });
      assert.equal(event.status, 201, event.text);
      const answers = await Promise.all(
        Array.from({ length: 25 }, (_, i) =>
          http.call<{ code?: string }>(url, `/v1/events/${event.body.id}/orders`, {
            body: { customerId: `c-${i}`, quantity: 1 },
            headers: { "idempotency-key": `cluster-${i}` },
          }),
        ),
      );
      assert.equal(answers.filter((answer) => answer.status === 201).length, 10);
      for (const answer of answers.filter((a) => a.status !== 201))
        assert.equal(answer.body.code, "sold_out", answer.text);
      const seen = await http.call<{ sold: number }>(url, `/v1/events/${event.body.id}`);
      assert.equal(seen.body.sold, 10);
      run("podman", ["healthcheck", "run", `${name}-lb`]);
      run("podman", ["healthcheck", "run", `${name}-s0`]);
    } finally {
      for (const suffix of ["lb", "s0", "s1"])
        spawnSync("podman", ["rm", "-f", "-v", "-t", "5", `${name}-${suffix}`]);
      await dropSchema(TEST_POSTGRES_URL, schema);
      await owner.query(`DROP OWNED BY ${pg.escapeIdentifier(role)}`);
      await owner.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
      await owner.end();
    }
  });
});
