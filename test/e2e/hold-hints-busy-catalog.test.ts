/**
 * The per-event layout over HTTP with its catalog busy: while another process holds catalog.db's write
 * lock, a hold and an order are answered 201 (their batch committed; the hold-deadline hint is bookkeeping
 * that must not turn that into a 503), the failed hint write shows in /metrics, and once the catalog is
 * free the instance's sweeper writes the hint it owed.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import Database from "better-sqlite3";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { setTimeout as sleep } from "node:timers/promises";
import type { Event } from "../../src/domain/event.js";
import type { Hold, Order } from "../../src/domain/sale.js";
import { ForkedChild } from "../support/forked-child.js";
import type { HintChildMessage, HintChildRequest, HintChildSetup } from "../support/hint-child.js";
import { HttpClient } from "../support/http-client.js";
import { ServerProcess, stopAll } from "../support/server-process.js";

const CHILD = fileURLToPath(new URL("../support/hint-child.js", import.meta.url));

function hintOf(dir: string, eventId: string): number | undefined {
  const db = new Database(join(dir, "catalog.db"), { readonly: true });
  try {
    const row = db.prepare("SELECT earliest_ms FROM hold_deadlines WHERE event_id = ?").get(eventId) as
      { earliest_ms: number } | undefined;
    return row?.earliest_ms;
  } finally {
    db.close();
  }
}

describe("per-event layout over HTTP with a busy catalog", () => {
  const dir = mkdtempSync(join(tmpdir(), "boxoffice-e2e-hints-"));
  const http = new HttpClient(4);
  let locker: ForkedChild<HintChildRequest, HintChildMessage> | null = null;
  after(async () => {
    await locker?.stop();
    await stopAll();
    await http.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("answers 201 for a hold and an order while another process holds the catalog's write lock", async () => {
    const server = await ServerProcess.start({
      dataDir: dir,
      instanceId: "busy-catalog",
      args: ["--sweep-interval-ms", "50"],
    });
    const created = await http.call<Event>(server.url, "/v1/events", {
      admin: true,
      body: { name: "Busy catalog", capacity: 100, maxPerCustomer: 10 },
    });
    assert.equal(created.status, 201, created.text);
    const eventId = created.body.id;
    const setup: HintChildSetup = { dir, rescanEventsPerSweep: 0 };
    locker = await ForkedChild.start<HintChildRequest, HintChildMessage>(CHILD, setup);
    await locker.run({ op: "lock-catalog" });

    const hold = await http.call<Hold>(server.url, `/v1/events/${eventId}/holds`, {
      body: { customerId: "holder", quantity: 2, ttlSeconds: 60 },
      headers: { "idempotency-key": "busy-hold" },
    });
    assert.equal(hold.status, 201, hold.text);
    const order = await http.call<Order>(server.url, `/v1/events/${eventId}/orders`, {
      body: { customerId: "buyer", quantity: 3 },
    });
    assert.equal(order.status, 201, order.text);
    const event = await http.call<Event>(server.url, `/v1/events/${eventId}`);
    assert.deepEqual({ sold: event.body.sold, held: event.body.held }, { sold: 3, held: 2 });
    const metrics = await http.call(server.url, "/metrics");
    const failures = /^boxoffice_store_bookkeeping_failures_total\{[^}]*\} (\d+)/m.exec(metrics.text);
    assert.ok(Number(failures?.[1]) >= 1, "the failed hint write is counted");
    assert.equal(hintOf(dir, eventId), undefined);

    await locker.run({ op: "unlock-catalog" });
    const deadline = Date.now() + 10_000;
    while (hintOf(dir, eventId) === undefined && Date.now() < deadline) await sleep(50);
    assert.equal(hintOf(dir, eventId), Date.parse(hold.body.expiresAt), "the sweeper wrote the hint");
  });
});
