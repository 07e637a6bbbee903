/**
 * The webhook side of the store contract, run on every backend (SQLite in both layouts, PostgreSQL):
 * every change writes its message in its own transaction (and a refused command none), the relay's
 * dispatch moves each message once and fans it out to the enabled endpoints that subscribe to its type,
 * claims are leases no two handles share, a result is written only by its lease's owner, and a replay
 * makes a finished delivery pending again.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { planEvent } from "../../src/domain/event.js";
import type { EventPlan } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import type { Command, Hold, Order } from "../../src/domain/sale.js";
import type { WebhookEventType, WebhookMessage } from "../../src/domain/webhook.js";
import { newEndpointId } from "../../src/domain/webhook.js";
import type { ClaimedDelivery } from "../../src/store/webhook-store.js";
import type { Store } from "../../src/store/store.js";
import type { StoreFixture } from "./store-contract.js";

const purchase = (customerId: string, quantity: number): Command => ({
  type: "purchase",
  customerId,
  selection: { quantity, seats: null },
  idempotency: null,
});
const hold = (customerId: string, quantity: number, ttlSeconds = 30): Command => ({
  type: "hold",
  customerId,
  selection: { quantity, seats: null },
  ttlSeconds,
  idempotency: null,
});

async function createEvent(store: Store, capacity: number): Promise<EventPlan> {
  const plan = planEvent(
    { name: "Webhooks", capacity, maxPerOrder: 8, maxPerCustomer: capacity },
    newEventId(),
    new Date(),
  );
  await store.createEvent(plan);
  return plan;
}

async function subscribe(
  store: Store,
  options: { eventTypes?: WebhookEventType[]; enabled?: boolean } = {},
): Promise<string> {
  const id = newEndpointId();
  await store.webhooks.createEndpoint({
    id,
    url: "http://127.0.0.1:9/hook",
    eventTypes: options.eventTypes ?? [],
    enabled: options.enabled ?? true,
    createdAt: new Date().toISOString(),
    secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  });
  return id;
}

/** Moves everything in the outbox; returns how many messages moved. */
async function dispatchAll(store: Store, now = new Date()): Promise<number> {
  let moved = 0;
  for (;;) {
    const n = await store.webhooks.dispatchOutbox(now, 1000);
    moved += n;
    if (n === 0) return moved;
  }
}

/** Claims every due delivery of `store` (leases of `leaseMs`). */
async function claimAll(store: Store, owner: string, leaseMs = 60_000): Promise<ClaimedDelivery[]> {
  return store.webhooks.claimDeliveries(owner, new Date(), leaseMs, 1000);
}

function messages(claimed: readonly ClaimedDelivery[]): WebhookMessage[] {
  return claimed.map((c) => JSON.parse(c.payload) as WebhookMessage).sort((a, b) => (a.id < b.id ? -1 : 1));
}

export function describeWebhookContract(
  name: string,
  factory: () => Promise<StoreFixture>,
  options: { skip?: string } = {},
): void {
  describe(`${name}: webhook outbox and deliveries`, { skip: options.skip }, () => {
    let fixture: StoreFixture;
    let store: Store;
    before(async () => {
      fixture = await factory();
      store = fixture.store;
    });
    after(async () => fixture?.cleanup());

    it("writes a message per change in the change's transaction, none for a refusal, and moves each once", async () => {
      // Earlier tests' messages out of the way; every endpoint of this fixture gets the new ones.
      await dispatchAll(store);
      const endpointId = await subscribe(store);
      const plan = await createEvent(store, 5);
      const t0 = new Date();
      const [sold, held, refused] = await store.execute(
        plan.id,
        [purchase("a", 2), hold("b", 2), purchase("c", 4)],
        null,
        t0,
      );
      assert.ok(sold?.ok && held?.ok);
      assert.equal(refused?.ok, false, "sold out: no message for it");
      const holdId = (held.value as Hold).id;
      const orderId = (sold.value as Order).id;
      const [confirmed] = await store.execute(
        plan.id,
        [{ type: "confirm-hold", holdId, idempotency: null }],
        null,
        t0,
      );
      assert.ok(confirmed?.ok);
      await store.execute(plan.id, [{ type: "cancel-order", orderId }], null, t0);
      // A hold that runs out inside a later batch, then the last tickets: sold out.
      const [shortHold] = await store.execute(plan.id, [hold("d", 1, 30)], null, t0);
      assert.ok(shortHold?.ok);
      const t1 = new Date(t0.getTime() + 31_000);
      const [last] = await store.execute(plan.id, [purchase("e", 3)], null, t1);
      assert.ok(last?.ok, JSON.stringify(last));
      assert.equal((await store.getEvent(plan.id))?.available, 0);
      // A hold that the sweeper expires.
      const plan2 = await createEvent(store, 5);
      const [swept] = await store.execute(plan2.id, [hold("f", 1, 30)], null, t0);
      assert.ok(swept?.ok);
      assert.equal(await store.expireHolds(t1, 100), 1);

      const moved = await dispatchAll(store);
      assert.equal(moved, 10);
      assert.equal(await dispatchAll(store), 0, "a message is moved once");
      const claimed = (await claimAll(store, "contract")).filter((c) => c.endpointId === endpointId);
      const got = messages(claimed);
      assert.deepEqual(got.map((m) => m.type).sort(), [
        "event.sold_out",
        "hold.created",
        "hold.created",
        "hold.created",
        "hold.expired",
        "hold.expired",
        "order.cancelled",
        "order.created",
        "order.created",
        "order.created",
      ]);
      for (const message of got) {
        assert.deepEqual(Object.keys(message), ["id", "type", "timestamp", "data"]);
        assert.match(message.id, /^msg_[0-9A-HJKMNP-TV-Z]{26}$/);
        assert.ok(!Number.isNaN(Date.parse(message.timestamp)));
      }
      const find = (type: WebhookEventType, test: (data: Record<string, unknown>) => boolean = () => true) =>
        got.find((m) => m.type === type && test(m.data))?.data;
      const fromHold = find("order.created", (d) => d.holdId !== null) as { order: Order; holdId: string };
      assert.equal(fromHold.holdId, holdId);
      assert.equal(fromHold.order.id, (confirmed.value as Order).id);
      assert.ok(find("order.created", (d) => (d.order as Order).id === orderId && d.holdId === null));
      assert.equal((find("order.cancelled") as { order: Order }).order.status, "cancelled");
      const expired = got
        .filter((m) => m.type === "hold.expired")
        .map((m) => (m.data as { hold: Hold }).hold)
        .sort((x, y) => (x.customerId < y.customerId ? -1 : 1));
      assert.deepEqual(
        expired.map((h) => [h.customerId, h.eventId, h.status, h.quantity, h.total, h.lines.length]),
        [
          ["d", plan.id, "expired", 1, 0, 1],
          ["f", plan2.id, "expired", 1, 0, 1],
        ],
        "an expired hold is the whole resource, its lines and total too",
      );
      assert.deepEqual(find("event.sold_out"), { eventId: plan.id, capacity: 5, sold: 5, held: 0 });
      for (const c of claimed) {
        await store.webhooks.recordAttempt(
          "contract",
          {
            deliveryId: c.id,
            attempt: c.attempt,
            status: "delivered",
            retryInMs: 0,
            statusCode: 200,
            error: null,
          },
          new Date(),
        );
      }
      await store.webhooks.deleteEndpoint(endpointId);
    });

    it("writes event.state_changed in the transaction of an admin's action or edit, none for a refusal or a no-op", async () => {
      await dispatchAll(store);
      const endpointId = await subscribe(store, { eventTypes: ["event.state_changed"] });
      const plan = await createEvent(store, 5);
      assert.equal((await store.changeEventStatus(plan.id, "pause"))?.ok, true);
      assert.equal((await store.changeEventStatus(plan.id, "pause"))?.ok, true, "paused again: a no-op");
      assert.equal((await store.changeEventStatus(plan.id, "resume"))?.ok, true);
      // A window that starts in an hour moves the sale from on sale to scheduled.
      const later = new Date(Date.now() + 3_600_000).toISOString();
      assert.equal((await store.updateEvent(plan.id, { salesStartAt: later }))?.ok, true);
      assert.equal((await store.updateEvent(plan.id, { name: "Renamed" }))?.ok, true, "no state change");
      assert.equal((await store.changeEventStatus(plan.id, "close"))?.ok, true);
      assert.equal((await store.changeEventStatus(plan.id, "resume"))?.ok, false, "closed: refused");
      await dispatchAll(store);
      const got = messages((await claimAll(store, "state")).filter((c) => c.endpointId === endpointId));
      assert.deepEqual(
        got.map((m) => m.data),
        [
          { eventId: plan.id, from: "on_sale", to: "paused" },
          { eventId: plan.id, from: "paused", to: "on_sale" },
          { eventId: plan.id, from: "on_sale", to: "scheduled" },
          { eventId: plan.id, from: "scheduled", to: "closed" },
        ],
      );
      await store.webhooks.deleteEndpoint(endpointId);
    });

    it("fans a message out to the enabled endpoints that subscribe to its type, once however many dispatch", async () => {
      await dispatchAll(store);
      const orders = await subscribe(store, { eventTypes: ["order.created"] });
      const holds = await subscribe(store, { eventTypes: ["hold.created", "hold.expired"] });
      const off = await subscribe(store, { enabled: false });
      const plan = await createEvent(store, 100);
      const other = await fixture.openAnother();
      const now = new Date();
      await Promise.all(
        Array.from({ length: 10 }, (_, i) =>
          store.execute(plan.id, [purchase(`p${i}`, 1), hold(`h${i}`, 1)], null, now),
        ),
      );
      const [a, b] = await Promise.all([dispatchAll(store), dispatchAll(other)]);
      assert.ok(a + b >= 20, `moved ${a} + ${b}`);
      const all = await store.webhooks.listDeliveries({
        endpointId: null,
        status: null,
        limit: 100,
        cursor: null,
      });
      const of = (id: string) => all.deliveries.filter((d) => d.endpointId === id);
      assert.equal(of(orders).length, 10);
      assert.ok(
        of(orders).every((d) => d.type === "order.created" && d.status === "pending" && d.attempts === 0),
      );
      assert.equal(of(holds).length, 10);
      assert.ok(of(holds).every((d) => d.type === "hold.created"));
      assert.equal(of(off).length, 0, "a disabled endpoint gets nothing");
      assert.equal(
        new Set(all.deliveries.map((d) => `${d.messageId}/${d.endpointId}`)).size,
        all.deliveries.length,
      );
      // Pages, newest first, filtered.
      const page1 = await store.webhooks.listDeliveries({
        endpointId: orders,
        status: "pending",
        limit: 4,
        cursor: null,
      });
      assert.equal(page1.deliveries.length, 4);
      const page2 = await store.webhooks.listDeliveries({
        endpointId: orders,
        status: "pending",
        limit: 100,
        cursor: page1.nextCursor,
      });
      assert.equal(page2.deliveries.length, 6);
      assert.equal(page2.nextCursor, null);
      const ids = [...page1.deliveries, ...page2.deliveries].map((d) => d.id);
      assert.deepEqual(ids, [...ids].sort().reverse());
      assert.equal(await store.webhooks.deleteEndpoint(off), true);
      assert.equal(await store.webhooks.deleteEndpoint(off), false);
      assert.equal(await store.webhooks.deleteEndpoint(holds), true);
      assert.equal(
        (await store.webhooks.listDeliveries({ endpointId: holds, status: null, limit: 100, cursor: null }))
          .deliveries.length,
        0,
      );
      // Leave the orders endpoint's deliveries for the claim tests.
      const listed = await store.webhooks.listEndpoints({ limit: 100, cursor: null });
      assert.ok(listed.endpoints.some((e) => e.id === orders && e.eventTypes[0] === "order.created"));
      assert.ok(!listed.endpoints.some((e) => e.id === off));
      assert.equal((await store.webhooks.getEndpoint(orders))?.enabled, true);
    });

    it("leases a delivery to one handle at a time; only the lease's owner records; a replay sends again", async () => {
      const other = await fixture.openAnother();
      const pending = await store.webhooks.pendingDeliveries();
      assert.ok(pending >= 10, `pending ${pending}`);
      const [mine, theirs] = await Promise.all([
        store.webhooks.claimDeliveries("one", new Date(), 400, 1000),
        other.webhooks.claimDeliveries("two", new Date(), 400, 1000),
      ]);
      const claimedIds = [...mine, ...theirs].map((c) => c.id);
      assert.equal(new Set(claimedIds).size, claimedIds.length, "no delivery leased twice");
      assert.equal(claimedIds.length, pending);
      assert.deepEqual(await claimAll(store, "three"), [], "a live lease is not claimed again");
      const first = (mine[0] ?? theirs[0]) as ClaimedDelivery;
      const firstOwner = mine[0] ? "one" : "two";
      assert.equal(first.attempt, 1);

      await sleep(500); // the leases run out
      const again = (await store.webhooks.claimDeliveries("three", new Date(), 60_000, 1000)).find(
        (c) => c.id === first.id,
      );
      assert.equal(again?.attempt, 2, "taken over once its lease ran out");
      const late = {
        deliveryId: first.id,
        attempt: 1,
        status: "delivered" as const,
        retryInMs: 0,
        statusCode: 200,
        error: null,
      };
      assert.equal(
        await store.webhooks.recordAttempt(firstOwner, late, new Date()),
        false,
        "the old owner's result is refused",
      );
      const retry = {
        deliveryId: first.id,
        attempt: 2,
        status: "retry" as const,
        retryInMs: 60_000,
        statusCode: 500,
        error: "HTTP 500",
      };
      assert.equal(await store.webhooks.recordAttempt("three", retry, new Date()), true);
      let seen = await store.webhooks.getDelivery(first.id);
      assert.equal(seen?.status, "pending");
      assert.equal(seen?.attempts, 2);
      assert.equal(seen?.lastStatusCode, 500);
      assert.equal(seen?.lastError, "HTTP 500");
      assert.ok(Date.parse(seen?.nextAttemptAt ?? "") > Date.now() + 30_000, "not due before its backoff");
      assert.ok(
        !(await claimAll(store, "four")).some((c) => c.id === first.id),
        "not claimed before it is due",
      );

      // Replay: due now; a delivered one comes back as pending and is sent again with the same message.
      await store.webhooks.replayDelivery(first.id, new Date());
      const third = (await claimAll(store, "five")).find((c) => c.id === first.id) as ClaimedDelivery;
      assert.equal(third.attempt, 3);
      const done = {
        deliveryId: first.id,
        attempt: 3,
        status: "delivered" as const,
        retryInMs: 0,
        statusCode: 204,
        error: null,
      };
      assert.equal(await store.webhooks.recordAttempt("five", done, new Date()), true);
      seen = await store.webhooks.getDelivery(first.id);
      assert.equal(seen?.status, "delivered");
      assert.equal(seen?.nextAttemptAt, null);
      assert.ok(seen?.deliveredAt);
      const replayed = await store.webhooks.replayDelivery(first.id, new Date());
      assert.equal(replayed?.status, "pending");
      const fourth = (await claimAll(store, "six")).find((c) => c.id === first.id);
      assert.equal(fourth?.attempt, 4);
      assert.equal(fourth?.messageId, first.messageId);
      assert.equal(fourth?.payload, first.payload);
      const failed = {
        deliveryId: first.id,
        attempt: 4,
        status: "failed" as const,
        retryInMs: 0,
        statusCode: null,
        error: "ECONNREFUSED",
      };
      assert.equal(await store.webhooks.recordAttempt("six", failed, new Date()), true);
      assert.equal((await store.webhooks.getDelivery(first.id))?.status, "failed");
      assert.equal(await store.webhooks.replayDelivery("dlv_00000000000000000000000000", new Date()), null);
    });

    it("forgets finished deliveries past the retention, a few at a time, never a pending one", async () => {
      const plan = await createEvent(store, 10);
      await store.execute(plan.id, [purchase("p", 1), purchase("q", 1), purchase("r", 1)], null, new Date());
      assert.ok((await dispatchAll(store)) >= 3);
      // Only the new deliveries are free to claim (the others are leased or finished).
      const fresh = await claimAll(store, "seven");
      assert.ok(fresh.length >= 3, `${fresh.length} claimed`);
      const [delivered, failed, ...rest] = fresh as [ClaimedDelivery, ClaimedDelivery, ...ClaimedDelivery[]];
      const record = (delivery: ClaimedDelivery, status: "delivered" | "failed") =>
        store.webhooks.recordAttempt(
          "seven",
          {
            deliveryId: delivery.id,
            attempt: delivery.attempt,
            status,
            retryInMs: 0,
            statusCode: null,
            error: null,
          },
          new Date(),
        );
      assert.ok(await record(delivered, "delivered"));
      assert.ok(await record(failed, "failed"));
      const all = await store.webhooks.listDeliveries({
        limit: 1000,
        cursor: null,
        endpointId: null,
        status: null,
      });
      const finished = all.deliveries.filter((d) => d.status !== "pending");
      const pending = all.deliveries.filter((d) => d.status === "pending");
      assert.ok(finished.length >= 2 && pending.length >= rest.length, "both kinds are there");

      assert.equal(
        await store.webhooks.pruneDeliveries(new Date(Date.now() - 3_600_000), 1000),
        0,
        "none is that old",
      );
      // Everything so far is older than a cutoff in the future: at most `limit` per call.
      const later = new Date(Date.now() + 60_000);
      assert.equal(await store.webhooks.pruneDeliveries(later, 1), 1);
      let removed = 1;
      for (let n = -1; n !== 0; removed += n) n = await store.webhooks.pruneDeliveries(later, 1000);
      assert.equal(removed, finished.length, "every finished delivery, once");
      for (const delivery of finished) assert.equal(await store.webhooks.getDelivery(delivery.id), null);
      // A pending delivery stays, with its message (the delivery is read joined to its message).
      for (const delivery of pending) {
        const kept = await store.webhooks.getDelivery(delivery.id);
        assert.equal(kept?.status, "pending", `${delivery.id} kept`);
        assert.equal(kept?.eventId, delivery.eventId);
      }
    });

    it("sends event.sold_out with what the batch left sold and held, once, for the event it filled", async () => {
      await dispatchAll(store);
      const endpointId = await subscribe(store, { eventTypes: ["event.sold_out"] });
      const [a, b] = [await createEvent(store, 3), await createEvent(store, 3)];
      const t0 = new Date();
      // Several events in one call, as the sell path's tick sends them (one transaction on one file).
      const batches = [
        { eventId: a.id, commands: [purchase("a1", 1), hold("a2", 2)], guard: null },
        { eventId: b.id, commands: [purchase("b1", 1)], guard: null },
      ];
      const results = store.executeMany
        ? await store.executeMany(batches, t0)
        : await Promise.all(
            batches.map(async ({ eventId, commands }) => ({
              ok: true as const,
              outcomes: await store.execute(eventId, commands, null, t0),
            })),
          );
      for (const result of results) {
        assert.ok(result.ok);
        for (const outcome of result.outcomes) assert.ok(outcome.ok, JSON.stringify(outcome));
      }
      // A refused purchase on the full event changes nothing and sends nothing more.
      const [refused] = await store.execute(a.id, [purchase("a3", 1)], null, t0);
      assert.equal(refused?.ok, false);
      await dispatchAll(store);
      const soldOut = messages(
        (await claimAll(store, "sold-out")).filter((c) => c.endpointId === endpointId),
      ).filter((m) => [a.id, b.id].includes((m.data as { eventId: string }).eventId));
      assert.deepEqual(
        soldOut.map((m) => m.data),
        [{ eventId: a.id, capacity: 3, sold: 1, held: 2 }],
      );
    });
  });
}
