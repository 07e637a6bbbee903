/**
 * An instance that keeps crashing: the supervisor restarts it with a growing backoff and then says, in
 * one clear message with the instance's last errors, that it keeps crashing.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { Supervisor } from "../../../src/cluster/supervisor.js";

const CRASHING_CLI = fileURLToPath(new URL("../../support/crashing-cli.js", import.meta.url));

describe("supervisor", () => {
  it(
    "restarts a crashing instance with backoff and says clearly that it keeps crashing",
    { timeout: 60_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "boxoffice-crash-"));
      const messages: string[] = [];
      // The supervisor's own logger, its lines caught: each is one JSON object.
      const log = pino(
        { level: "info" },
        { write: (line: string) => messages.push((JSON.parse(line) as { msg: string }).msg) },
      );
      const supervisor = new Supervisor({
        cliPath: CRASHING_CLI,
        host: "127.0.0.1",
        port: 19591,
        instancePortBase: 19592,
        instances: 1,
        autoscale: null,
        serverArgs: [],
        balancerArgs: [],
        env: { ...process.env, BOXOFFICE_ADMIN_TOKEN: "crash-test-token-0123456789" },
        adminToken: "crash-test-token-0123456789",
        logDir: join(dir, "logs"),
        log,
      });
      try {
        await supervisor.start();
        const deadline = Date.now() + 30_000;
        while (Date.now() < deadline && !messages.some((m) => m.includes("keeps crashing"))) await sleep(100);
        const crashes = messages.filter((m) => m.includes("instance i-1 died"));
        assert.ok(crashes.length >= 3, messages.join("\n"));
        assert.match(crashes[0] ?? "", /restarting in 500 ms/);
        assert.match(crashes[1] ?? "", /restarting in 1000 ms/, "the backoff grows");
        const verdict = messages.find((m) => m.includes("keeps crashing"));
        assert.ok(verdict, messages.join("\n"));
        assert.match(
          verdict,
          /boom: this instance cannot start/,
          "the message shows the instance's last errors",
        );
        assert.equal((await supervisor.status()).instances.filter((i) => i.state === "ready").length, 0);
      } finally {
        await supervisor.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
