/**
 * `boxoffice migrate` as a separate step, and instances started with `--migrate false`:
 * - PostgreSQL: the roles are made by the shipped deploy/postgres/roles.sql (through psql); the schema's
 *   owner migrates; the instance runs as a role that has no CREATE right on the database or the schema
 *   (only USAGE, and row rights on the tables through default privileges), refuses to start while the
 *   schema is behind,
 *   cannot start when told to migrate, and with `--migrate false` starts and sells (store and PostgreSQL
 *   advisory locks, all as that role).
 * - SQLite: an instance with `--migrate false` on a fresh data directory refuses to start and names the
 *   command; after `boxoffice migrate` it starts and sells.
 * Real processes of the built CLI against the real PostgreSQL server.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import pg from "pg";
import type { Event } from "../../src/domain/event.js";
import type { Order } from "../../src/domain/sale.js";
import { HttpClient } from "../support/http-client.js";
import { dropSchema, freshSchemaName } from "../support/postgres-test-store.js";
import { CLI_PATH, E2E_ADMIN_TOKEN, ServerProcess, stopAll } from "../support/server-process.js";
import { postgresSkip, TEST_POSTGRES_URL } from "../support/services.js";
import { skipUnlessInstalled } from "../support/tools.js";

const ROLES_SQL = fileURLToPath(new URL("../../../deploy/postgres/roles.sql", import.meta.url));
const dataDirs: string[] = [];
const http = new HttpClient();
after(async () => {
  await stopAll();
  await http.close();
  dataDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true }));
});

function freshDataDir(what: string): string {
  const dir = mkdtempSync(join(tmpdir(), `boxoffice-e2e-migrate-${what}-`));
  dataDirs.push(dir);
  return dir;
}

/** Runs the built CLI to its end; resolves with its exit code and everything it wrote. */
function runCli(args: string[]): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CLI_PATH, ...args], {
      env: { ...process.env, BOXOFFICE_ADMIN_TOKEN: E2E_ADMIN_TOKEN },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let output = "";
    child.stdout.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on("data", (chunk: Buffer) => (output += chunk.toString()));
    child.once("error", reject);
    child.once("exit", (code) => resolve({ code, output }));
  });
}

/** `boxoffice server` that must not become ready: its exit code and output. */
function serverThatFails(dataDir: string, args: string[]): Promise<{ code: number | null; output: string }> {
  return runCli(["server", "--port", "0", "--host", "127.0.0.1", "--data", dataDir, ...args]);
}

/** An event of 10, two orders of 2 through `url`, and the event reads sold = 4 afterwards. */
async function sellThrough(url: string): Promise<void> {
  const created = await http.call<Event>(url, "/v1/events", {
    admin: true,
    body: { name: "Migrated night", capacity: 10, maxPerOrder: 4 },
  });
  assert.equal(created.status, 201, created.text);
  for (const customer of ["c-1", "c-2"]) {
    const order = await http.call<Order>(url, `/v1/events/${created.body.id}/orders`, {
      body: { customerId: customer, quantity: 2 },
      headers: { "idempotency-key": `key-${customer}` },
    });
    assert.equal(order.status, 201, order.text);
  }
  const seen = await http.call<Event>(url, `/v1/events/${created.body.id}`);
  assert.equal(seen.body.sold, 4);
  const ready = await http.call(url, "/ready");
  assert.equal(ready.status, 200, ready.text);
}

/** The PostgreSQL schema version this build migrates to: its highest migration file. */
const LATEST_POSTGRES_VERSION = Math.max(
  ...readdirSync(fileURLToPath(new URL("../../src/store/postgres/migrations/", import.meta.url)))
    .filter((name) => /^\d{3}-.*\.sql$/.test(name))
    .map((name) => Number(name.slice(0, 3))),
);

const skip = (await postgresSkip()) ?? skipUnlessInstalled("psql", "--version");
describe(
  "boxoffice migrate on PostgreSQL, instances as a role that cannot change the schema",
  { skip },
  () => {
    const schema = freshSchemaName("migrate");
    const role = `boxoffice_app_${randomBytes(4).toString("hex")}`;
    const ownerUrl = new URL(TEST_POSTGRES_URL);
    ownerUrl.searchParams.set("schema", schema);
    const appUrl = new URL(ownerUrl);
    appUrl.username = role;
    appUrl.password = "";
    let owner: pg.Client;

    before(async () => {
      owner = new pg.Client({ connectionString: TEST_POSTGRES_URL });
      await owner.connect();
      const { rows } = await owner.query<{ user: string }>("SELECT current_user AS user");
      // The operator's step, as docs/operations.md shows it: the role (LOGIN only: no CREATEDB, and
      // PUBLIC has no CREATE on the database), USAGE on the schema, and default privileges for what the
      // owner creates there later.
      const made = spawnSync(
        "psql",
        [
          "-X",
          "-q",
          "-v",
          `owner=${rows[0]!.user}`,
          "-v",
          `app_role=${role}`,
          "-v",
          "app_password=unused-with-trust",
        ].concat(["-v", `schema=${schema}`, "-f", ROLES_SQL, TEST_POSTGRES_URL]),
        { encoding: "utf8" },
      );
      assert.equal(made.status, 0, made.stdout + made.stderr);
    });
    after(async () => {
      await dropSchema(TEST_POSTGRES_URL, schema);
      await owner.query(`DROP OWNED BY ${pg.escapeIdentifier(role)}`);
      await owner.query(`DROP ROLE IF EXISTS ${pg.escapeIdentifier(role)}`);
      await owner.end();
    });

    it("refuses to start before the schema is migrated, naming the command", async () => {
      const { code, output } = await serverThatFails(freshDataDir("pg-behind"), [
        "--store",
        appUrl.toString(),
        "--lock",
        "postgres",
        "--migrate",
        "false",
      ]);
      assert.equal(code, 3, output);
      assert.match(output, /"code":"SCHEMA_BEHIND"/);
      assert.match(output, new RegExp(`PostgreSQL schema \\\\"${schema}\\\\" is at schema version 0`));
      assert.match(output, /run \\"boxoffice migrate\\"/);
      assert.doesNotMatch(output, /boxoffice server ready/);
    });

    it("migrates as the owner, once: a second run applies nothing", async () => {
      const first = await runCli(["migrate", "--store", ownerUrl.toString()]);
      assert.equal(first.code, 0, first.output);
      assert.match(first.output, /applied schema 001/);
      const second = await runCli(["migrate", "--store", ownerUrl.toString()]);
      assert.equal(second.code, 0, second.output);
      assert.match(second.output, new RegExp(`up to date \\(schema ${LATEST_POSTGRES_VERSION}\\)`));
      // roles.sql's default privileges gave the role the tables the migration created.
      const { rows: tables } = await owner.query<{ writable: boolean; count: number }>(
        `SELECT bool_and(has_table_privilege($1, format('%I.%I', schemaname, tablename), 'INSERT')) AS writable,
                count(*)::int AS count
           FROM pg_tables WHERE schemaname = $2`,
        [role, schema],
      );
      assert.ok((tables[0]?.count ?? 0) > 3);
      assert.equal(tables[0]?.writable, true);
      const { rows } = await owner.query<{ on_schema: boolean; on_database: boolean }>(
        `SELECT has_schema_privilege($1, $2, 'CREATE') AS on_schema,
              has_database_privilege($1, current_database(), 'CREATE') AS on_database`,
        [role, schema],
      );
      assert.deepEqual(rows[0], { on_schema: false, on_database: false });
    });

    it("cannot start as that role when told to migrate (the reason for --migrate false)", async () => {
      const { code, output } = await serverThatFails(freshDataDir("pg-denied"), [
        "--store",
        appUrl.toString(),
        "--lock",
        "postgres",
      ]);
      assert.notEqual(code, 0, output);
      assert.match(output, /permission denied/);
      assert.doesNotMatch(output, /boxoffice server ready/);
    });

    it("starts with --migrate false as that role and sells", async () => {
      const server = await ServerProcess.start({
        dataDir: freshDataDir("pg-limited"),
        instanceId: "limited-0",
        args: ["--store", appUrl.toString(), "--lock", "postgres", "--migrate", "false"],
      });
      await sellThrough(server.url);
      const { rows } = await owner.query<{ sold: number }>(
        `SELECT sum(quantity)::int AS sold FROM ${pg.escapeIdentifier(schema)}.orders`,
      );
      assert.equal(rows[0]?.sold, 4);
      await server.stop();
    });
  },
);

describe("boxoffice migrate on SQLite", () => {
  it("an instance with --migrate false refuses a fresh data directory, and sells after migrate", async () => {
    const dataDir = freshDataDir("sqlite");
    const refused = await serverThatFails(dataDir, ["--lock", "file", "--migrate", "false"]);
    assert.equal(refused.code, 3, refused.output);
    assert.match(refused.output, /catalog\.db \(catalog\) is at schema version 0/);

    const migrated = await runCli(["migrate", "--data", dataDir]);
    assert.equal(migrated.code, 0, migrated.output);
    assert.match(migrated.output, /applied catalog 001/);

    const server = await ServerProcess.start({
      dataDir,
      instanceId: "sqlite-0",
      args: ["--lock", "file", "--migrate", "false"],
    });
    await sellThrough(server.url);
    await server.stop();
  });

  it("a bad --migrate value stops the command with one line naming the flag", async () => {
    const { code, output } = await serverThatFails(freshDataDir("bad"), ["--migrate", "maybe"]);
    assert.equal(code, 2, output);
    assert.match(output, /--migrate/);
  });
});
