/**
 * The command line is built from the settings tables: every option of a table is in its command's --help
 * with its variable, a secret read only from the environment is never a flag, and a bad value is one
 * clear line and exit code 2, the same for every command.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { BALANCER_SETTINGS } from "../../../src/config/balancer-config.js";
import { CLUSTER_SETTINGS } from "../../../src/config/cluster-config.js";
import { SERVER_SETTINGS } from "../../../src/config/server-config.js";
import type { SettingTable } from "../../../src/config/settings.js";

const run = promisify(execFile);
const CLI = fileURLToPath(new URL("../../../src/cli/main.js", import.meta.url));

async function help(command: string): Promise<string> {
  const { stdout } = await run(process.execPath, [CLI, command, "--help"], {
    env: { PATH: process.env.PATH },
  });
  return stdout;
}

function assertListsEvery(text: string, table: SettingTable, command: string): void {
  for (const setting of Object.values(table)) {
    if (setting.flag !== null)
      assert.match(text, new RegExp(`--${setting.flag} <`), `${command}: --${setting.flag}`);
    assert.ok(text.includes(setting.env), `${command}: ${setting.env}`);
  }
}

describe("boxoffice --help", () => {
  it("lists every balancer option of the table under `lb`; --admin-token says it is kept for compatibility", async () => {
    const text = await help("lb");
    assertListsEvery(text, BALANCER_SETTINGS, "lb");
    assert.match(text, /--backend <url\.\.\.>/);
    assert.match(text.replace(/\s+/g, " "), /--admin-token <token> .*compatibility only/);
  });

  it("lists every server option under `server`, and the admin token only as a variable", async () => {
    const text = await help("server");
    assertListsEvery(text, SERVER_SETTINGS, "server");
    assert.doesNotMatch(text, /--admin-token/);
    assert.match(text, /environment only[^]*BOXOFFICE_ADMIN_TOKEN/);
  });

  it("lists every server and cluster option under `up`", async () => {
    const text = await help("up");
    assertListsEvery(text, SERVER_SETTINGS, "up");
    assertListsEvery(text, CLUSTER_SETTINGS, "up");
    assert.doesNotMatch(text, /--admin-token/);
  });

  it("refuses a bad value of any command with one line naming it, and exit code 2", async () => {
    for (const [args, named] of [
      [["lb", "--port", "nope"], "--port"],
      [["lb", "--max-queue=-1"], "--max-queue"],
      [["server", "--lock-wait-ms", "soon"], "--lock-wait-ms"],
      [["up", "--min", "3", "--max", "2"], "--min"],
    ] as const) {
      await assert.rejects(
        run(process.execPath, [CLI, ...args], { env: { PATH: process.env.PATH } }),
        (error: { code?: number; stderr?: string }) => {
          assert.equal(error.code, 2, args.join(" "));
          assert.equal(error.stderr?.trim().split("\n").length, 1, error.stderr);
          assert.match(error.stderr ?? "", new RegExp(`^boxoffice: .*${named}`));
          return true;
        },
      );
    }
  });
});
