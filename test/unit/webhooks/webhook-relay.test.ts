/**
 * The relay against a real SQLite store and real HTTP servers on port 0: a 2xx delivers, a redirect is
 * not followed and counts as a failure, a delivery that fails past its retry window is marked failed,
 * and the relay never has more attempts in flight than its concurrency.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { planEvent } from "../../../src/domain/event.js";
import { newEventId } from "../../../src/domain/ids.js";
import { newEndpointId } from "../../../src/domain/webhook.js";
import { SqliteStore } from "../../../src/store/sqlite/sqlite-store.js";
import { WebhookRelay } from "../../../src/webhooks/webhook-relay.js";
import { WebhookSender } from "../../../src/webhooks/webhook-sender.js";
import { newEndpointSecret } from "../../../src/webhooks/webhook-signer.js";

const DAY_MS = 24 * 3_600_000;

async function serve(handler: http.RequestListener): Promise<{ url: string; server: http.Server }> {
  const server = http.createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, server };
}

describe("webhook relay", () => {
  let dir: string;
  let store: SqliteStore;
  const servers: http.Server[] = [];
  const sender = new WebhookSender({ timeoutMs: 2000, userAgent: "test" });
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "boxoffice-relay-"));
    store = new SqliteStore({
      kind: "sqlite",
      dir,
      layout: "per-event",
      durability: "normal",
      maxOpenEvents: 8,
    });
    await store.init();
  });
  after(async () => {
    await sender.close();
    for (const server of servers) server.close();
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function endpointAt(url: string): Promise<string> {
    const id = newEndpointId();
    await store.webhooks.createEndpoint({
      id,
      url,
      eventTypes: [],
      enabled: true,
      createdAt: new Date().toISOString(),
      secret: newEndpointSecret(),
    });
    return id;
  }

  async function sell(count: number): Promise<void> {
    const plan = planEvent({ name: "Relay", capacity: 1000, maxPerCustomer: 1000 }, newEventId(), new Date());
    await store.createEvent(plan);
    const purchases = Array.from({ length: count }, (_, i) => ({
      type: "purchase" as const,
      customerId: `c${i}`,
      selection: { quantity: 1, seats: null },
      idempotency: null,
    }));
    await store.execute(plan.id, purchases, null, new Date());
  }

  const relay = (options: { now?: () => Date; concurrency?: number } = {}) =>
    new WebhookRelay({
      store: store.webhooks,
      sender,
      owner: "unit",
      intervalMs: 1_000_000,
      concurrency: options.concurrency ?? 4,
      retry: { baseMs: 10, maxMs: 20, windowMs: DAY_MS },
      retentionMs: 30 * DAY_MS,
      ...(options.now ? { now: options.now } : {}),
    });

  it("delivers on a 2xx, at most `concurrency` at once", async () => {
    let inFlight = 0;
    let most = 0;
    const { url, server } = await serve((request, response) => {
      inFlight++;
      most = Math.max(most, inFlight);
      request.resume();
      setTimeout(() => {
        inFlight--;
        response.writeHead(204).end();
      }, 50);
    });
    servers.push(server);
    const endpointId = await endpointAt(url);
    await sell(10);
    const r = relay({ concurrency: 3 });
    for (let i = 0; i < 10; i++) {
      await r.tick();
      await r.settled();
    }
    await r.close();
    const page = await store.webhooks.listDeliveries({
      endpointId,
      status: "delivered",
      limit: 100,
      cursor: null,
    });
    assert.equal(page.deliveries.length, 10);
    assert.ok(most <= 3 && most >= 1, `at most 3 in flight, saw ${most}`);
    await store.webhooks.deleteEndpoint(endpointId);
  });

  it("does not follow a redirect, and marks a delivery failed once it is older than the window", async () => {
    let followed = 0;
    const target = await serve((_request, response) => {
      followed++;
      response.writeHead(200).end();
    });
    const redirecting = await serve((request, response) => {
      request.resume();
      response.writeHead(307, { location: target.url }).end("moved");
    });
    servers.push(target.server, redirecting.server);
    const endpointId = await endpointAt(redirecting.url);
    await sell(1);
    const r = relay();
    await r.tick();
    await r.settled();
    let [delivery] = (
      await store.webhooks.listDeliveries({ endpointId, status: null, limit: 10, cursor: null })
    ).deliveries;
    assert.equal(delivery?.status, "pending");
    assert.equal(delivery?.lastStatusCode, 307);
    assert.equal(followed, 0, "the redirect was not followed");
    await r.close();
    // A day and more later, the next failure is the last.
    const later = relay({ now: () => new Date(Date.now() + DAY_MS + 60_000) });
    await later.tick();
    await later.settled();
    await later.close();
    [delivery] = (
      await store.webhooks.listDeliveries({ endpointId, status: null, limit: 10, cursor: null })
    ).deliveries;
    assert.equal(delivery?.status, "failed");
    assert.equal(delivery?.attempts, 2);
    assert.equal(delivery?.nextAttemptAt, null);
    assert.equal(followed, 0);
  });
});
