/**
 * The supervisor's control endpoint: POST /restart needs the admin token, checked by the shared
 * constant-time check, and a refusal is the same problem+json every HTTP surface answers.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { Registry } from "prom-client";
import { startControlServer } from "../../../src/cluster/control-server.js";
import type { Supervisor } from "../../../src/cluster/supervisor.js";
import { createLogger } from "../../../src/log/logger.js";

const TOKEN = "control-token-0123456789";

describe("control server", () => {
  let restarts = 0;
  let server: { url: string; close(): Promise<void> };
  before(async () => {
    // Only what the control server reads of a supervisor; no instance is started.
    const supervisor = {
      status: () => ({ instances: [] }),
      registry: new Registry(),
      rollingRestart: async () => {
        restarts++;
      },
    } as unknown as Supervisor;
    server = await startControlServer(supervisor, TOKEN, createLogger("silent", { component: "supervisor" }));
  });
  after(() => server.close());

  const restart = (authorization?: string) =>
    fetch(`${server.url}/restart`, {
      method: "POST",
      headers: authorization === undefined ? {} : { authorization },
    });

  it("refuses a missing or wrong token with 401 problem+json and restarts nothing", async () => {
    for (const authorization of [
      undefined,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}X`,
      "Bearer x",
      TOKEN,
    ]) {
      const response = await restart(authorization);
      assert.equal(response.status, 401, String(authorization));
      assert.match(String(response.headers.get("content-type")), /^application\/problem\+json/);
      assert.deepEqual(await response.json(), {
        type: "https://boxoffice.dev/problems/unauthorized",
        title: "Unauthorized",
        status: 401,
        detail: "send Authorization: Bearer <admin token>",
        code: "unauthorized",
      });
    }
    assert.equal(restarts, 0);
  });

  it("starts a rolling restart with the right token", async () => {
    const response = await restart(`Bearer ${TOKEN}`);
    assert.equal(response.status, 202);
    assert.deepEqual(await response.json(), { status: "restarting" });
    assert.equal(restarts, 1);
  });
});
