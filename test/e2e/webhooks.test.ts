/**
 * Webhooks end to end, on SQLite (per-event files and the single file) and PostgreSQL: three real
 * `boxoffice server` processes and a real receiving HTTP server in the test process. The receiver is
 * down at first, then slow (past the relay's timeout), then answers 500, then is killed in the middle of
 * a delivery, then fine; it still receives every message at least once, each with a valid signature
 * (checked with node:crypto), and never two requests for one message at the same time although two
 * instances deliver. A third instance, which delivers nothing itself, is SIGKILLed right after a
 * purchase it committed: the others deliver that purchase's message. A replay sends a message again.
 */
import { after, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Event } from "../../src/domain/event.js";
import type { Hold, Order } from "../../src/domain/sale.js";
import type { WebhookDelivery, WebhookMessage } from "../../src/domain/webhook.js";
import { HttpClient } from "../support/http-client.js";
import { dropSchema, freshSchemaName } from "../support/postgres-test-store.js";
import { ServerProcess, stopAll } from "../support/server-process.js";
import { postgresSkip, TEST_POSTGRES_URL } from "../support/services.js";
import { WebhookReceiver } from "../support/webhook-receiver.js";

const RELAY_FLAGS = [
  "--webhook-relay-interval-ms",
  "100",
  "--webhook-timeout-ms",
  "1000",
  "--webhook-retry-base-ms",
  "50",
  "--webhook-retry-max-ms",
  "400",
];

const dataDirs: string[] = [];
const http = new HttpClient(16);
after(async () => {
  await stopAll();
  await http.close();
  dataDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true }));
});

/** Polls `check` until it returns a value, or fails naming `what` after `deadlineMs`. */
async function until<T>(what: string, check: () => Promise<T | undefined>, deadlineMs = 90_000): Promise<T> {
  const end = Date.now() + deadlineMs;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}`);
    await sleep(100);
  }
}

async function allDeliveries(url: string, endpointId: string): Promise<WebhookDelivery[]> {
  const deliveries: WebhookDelivery[] = [];
  let cursor: string | null = null;
  do {
    const page: {
      status: number;
      text: string;
      body: { deliveries: WebhookDelivery[]; nextCursor: string | null };
    } = await http.call(
      url,
      `/v1/webhooks/deliveries?endpointId=${endpointId}&limit=100${cursor ? `&cursor=${cursor}` : ""}`,
      { admin: true },
    );
    assert.equal(page.status, 200, page.text);
    deliveries.push(...page.body.deliveries);
    cursor = page.body.nextCursor;
  } while (cursor);
  return deliveries;
}

type Backend = {
  name: string;
  args: string[];
  layout?: "single" | "per-event";
  cleanup?: () => Promise<void>;
};

const pgSkip = await postgresSkip();
const pgSchema = freshSchemaName("webhooks_e2e");
const backends: (Backend & { skip?: string })[] = [
  { name: "sqlite per-event", args: [], layout: "per-event" },
  { name: "sqlite single", args: [], layout: "single" },
  {
    name: "postgres",
    args: ["--store", `${TEST_POSTGRES_URL}?schema=${pgSchema}`, "--pg-pool-size", "4"],
    cleanup: () => dropSchema(TEST_POSTGRES_URL, pgSchema),
    ...(pgSkip === undefined ? {} : { skip: pgSkip }),
  },
];

for (const backend of backends) {
  describe(`webhooks end to end: ${backend.name}`, { skip: backend.skip, timeout: 240_000 }, () => {
    after(async () => backend.cleanup?.());

    it("delivers every message at least once, signed, through a receiver that is down, slow, failing and killed", async () => {
      const dataDir = mkdtempSync(join(tmpdir(), "boxoffice-e2e-webhooks-"));
      dataDirs.push(dataDir);
      const start = (instanceId: string, extra: string[]) =>
        ServerProcess.start({
          dataDir,
          instanceId,
          // The machine may be busy: a start is not what this test measures.
          startTimeoutMs: 90_000,
          ...(backend.layout ? { layout: backend.layout } : {}),
          args: [...backend.args, ...RELAY_FLAGS, ...extra],
        });
      // Two instances deliver; the writer delivers nothing, so what it commits is delivered by others.
      const [one, two, writer] = await Promise.all([
        start("wh-1", []),
        start("wh-2", []),
        start("wh-writer", ["--webhook-concurrency", "0"]),
      ]);
      const [a, b] = [(one as ServerProcess).url, (two as ServerProcess).url];
      const receiver = await WebhookReceiver.reserve();

      // The admin API: the secret is shown once; a bad URL changes nothing.
      const refused = await http.call(a, "/v1/webhooks", {
        admin: true,
        body: { url: "ftp://example.com/" },
      });
      assert.equal(refused.status, 422, refused.text);
      const created = await http.call<{ id: string; secret: string; url: string }>(a, "/v1/webhooks", {
        admin: true,
        body: { url: receiver.url },
      });
      assert.equal(created.status, 201, created.text);
      assert.match(created.body.secret, /^whsec_[A-Za-z0-9+/]+={0,2}$/);
      receiver.secret = created.body.secret;
      const endpointId = created.body.id;
      const read = await http.call<Record<string, unknown>>(b, `/v1/webhooks/${endpointId}`, { admin: true });
      assert.equal(read.status, 200);
      assert.equal(read.body.secret, undefined, "never shown again");

      // Sales over both delivering instances: orders, holds, a cancel, a sell-out.
      const event = (
        await http.call<Event>(a, "/v1/events", { admin: true, body: { name: "Hooks", capacity: 1000 } })
      ).body;
      const small = (
        await http.call<Event>(b, "/v1/events", { admin: true, body: { name: "Small", capacity: 2 } })
      ).body;
      const orders = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          http.call<Order>(i % 2 ? a : b, `/v1/events/${event.id}/orders`, {
            body: { customerId: `buyer-${i}`, quantity: 1 },
          }),
        ),
      );
      assert.ok(orders.every((o) => o.status === 201));
      const holds = await Promise.all(
        Array.from({ length: 5 }, (_, i) =>
          http.call<Hold>(a, `/v1/events/${event.id}/holds`, {
            body: { customerId: `holder-${i}`, quantity: 1 },
          }),
        ),
      );
      assert.ok(holds.every((h) => h.status === 201));
      const first = orders[0]?.body as (Order & { secret: string }) | undefined;
      const cancelled = await http.call<Order>(b, `/v1/orders/${first?.id}/cancel`, {
        method: "POST",
        headers: { "x-order-secret": first?.secret ?? "" },
      });
      assert.equal(cancelled.status, 200);
      const soldOut = await http.call<Order>(a, `/v1/events/${small.id}/orders`, {
        body: { customerId: "last", quantity: 2 },
      });
      assert.equal(soldOut.status, 201);

      // The writer commits a purchase and is killed at once: no graceful anything.
      const written = await http.call<Order>((writer as ServerProcess).url, `/v1/events/${event.id}/orders`, {
        body: { customerId: "killed-writer", quantity: 1 },
      });
      assert.equal(written.status, 201);
      (writer as ServerProcess).kill("SIGKILL");
      await (writer as ServerProcess).exited;

      // 21 order.created + 5 hold.created + 1 order.cancelled on the big event; order.created and
      // event.sold_out on the small one.
      const expected = 29;
      // Down: attempts fail to connect.
      await until("an attempt against the down receiver", async () => {
        const deliveries = await allDeliveries(a, endpointId);
        return deliveries.some((d) => d.attempts > 0 && d.lastError !== null) ? true : undefined;
      });
      // Slow, past the timeout: received, but the relay gives up on the answer and tries again.
      await receiver.start("slow");
      await until("3 slow receipts", async () => (receiver.receipts.length >= 3 ? true : undefined));
      // Failing.
      receiver.mode = "fail";
      const before500 = receiver.receipts.length;
      await until("5 answers 500", async () =>
        receiver.receipts.slice(before500).filter((r) => r.answered === 500).length >= 5 ? true : undefined,
      );
      // Killed in the middle of a delivery, then back.
      receiver.mode = "kill";
      const beforeKill = receiver.receipts.length;
      await until("the kill", async () => (receiver.receipts.length > beforeKill ? true : undefined));
      await sleep(300);
      await receiver.start("ok");

      const deliveries = await until("every delivery delivered", async () => {
        const all = await allDeliveries(a, endpointId);
        return all.length === expected && all.every((d) => d.status === "delivered") ? all : undefined;
      });
      const messageIds = new Set(deliveries.map((d) => d.messageId));
      assert.equal(messageIds.size, expected);
      for (const id of messageIds) assert.ok(receiver.validFor(id) >= 1, `message ${id} received`);
      assert.ok(
        receiver.receipts.every((r) => r.validSignature),
        "every request was signed right",
      );
      assert.equal(receiver.maxInFlightPerId, 1, "never two requests for one message at the same time");
      assert.ok(
        deliveries.some((d) => d.attempts > 1),
        "some were retried",
      );
      const bodies = receiver.receipts.map((r) => JSON.parse(r.body) as WebhookMessage);
      for (const [i, body] of bodies.entries()) {
        assert.deepEqual(Object.keys(body), ["id", "type", "timestamp", "data"]);
        assert.equal(body.id, receiver.receipts[i]?.id, "webhook-id is the message id");
      }
      const ofWriter = bodies.find(
        (m) => m.type === "order.created" && (m.data.order as Order).customerId === "killed-writer",
      );
      assert.ok(ofWriter, "the killed writer's purchase was delivered by another instance");
      assert.ok(bodies.some((m) => m.type === "event.sold_out" && m.data.eventId === small.id));
      assert.ok(bodies.some((m) => m.type === "order.cancelled"));
      assert.equal(new Set(bodies.filter((m) => m.type === "hold.created").map((m) => m.id)).size, 5);

      // Replay: the same message again.
      const target = deliveries[0] as WebhookDelivery;
      const seen = receiver.validFor(target.messageId);
      const replayed = await http.call<WebhookDelivery>(b, `/v1/webhooks/deliveries/${target.id}/replay`, {
        method: "POST",
        admin: true,
      });
      assert.equal(replayed.status, 200, replayed.text);
      assert.equal(replayed.body.status, "pending");
      await until("the replay", async () => (receiver.validFor(target.messageId) > seen ? true : undefined));
      await until("the replay recorded", async () => {
        const d = await http.call<WebhookDelivery>(a, `/v1/webhooks/deliveries/${target.id}`, {
          admin: true,
        });
        return d.body.status === "delivered" ? true : undefined;
      });

      const metrics = (await http.call(a, "/metrics")).text + (await http.call(b, "/metrics")).text;
      assert.match(
        metrics,
        /boxoffice_webhook_attempts_total\{result="delivered",instance_id="wh-[12]"\} [1-9]/,
      );
      assert.match(metrics, /boxoffice_webhook_attempts_total\{result="retry",instance_id="wh-[12]"\} [1-9]/);
      assert.match(metrics, /boxoffice_webhook_deliveries_pending\{instance_id="wh-1"\} 0/);
      await receiver.stop();
      await Promise.all([one, two].map((server) => (server as ServerProcess).stop()));
    });
  });
}
