/** `boxoffice lb` logs through the one logger (JSON lines, pino), like every boxoffice process. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const CLI = fileURLToPath(new URL("../../../src/cli/main.js", import.meta.url));

describe("boxoffice lb", () => {
  it("logs JSON lines: where it listens, and that the admin calls are closed without a token", async () => {
    const child = spawn(
      process.execPath,
      [CLI, "lb", "--port", "0", "--backend", "http://127.0.0.1:9", "--upstream-keep-alive-ms", "6000"],
      { env: { PATH: process.env.PATH }, stdio: ["ignore", "pipe", "pipe"] },
    );
    const lines: { level: number; component: string; msg: string }[] = [];
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`not started: ${JSON.stringify(lines)}`)), 20_000);
        createInterface({ input: child.stdout }).on("line", (line) => {
          lines.push(JSON.parse(line) as (typeof lines)[number]);
          // The token warning is the last line it writes at start.
          const started = (text: string) => lines.some((l) => l.msg.includes(text));
          if (started("listening on http://127.0.0.1:") && started("no admin token")) {
            clearTimeout(timer);
            resolve();
          }
        });
        child.once("exit", (code) => reject(new Error(`lb exited with ${code}`)));
      });
      assert.ok(lines.every((l) => l.component === "balancer"));
      const warnings = lines.filter((l) => l.level === 40).map((l) => l.msg);
      assert.ok(
        warnings.some((w) => /upstreamKeepAliveMs >= 5000/.test(w)),
        warnings.join("\n"),
      );
      assert.ok(
        warnings.some((w) => /no admin token/.test(w)),
        warnings.join("\n"),
      );
    } finally {
      child.kill("SIGTERM");
      if (child.exitCode === null) await once(child, "exit");
    }
  });
});
