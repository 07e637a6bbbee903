/**
 * The HTTP layer through inject(): routes, the mapping of outcomes and errors to problem+json, admin
 * auth, idempotency, 503s, and the headers every answer must carry. The store is the real SQLite store.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import type { AddressInfo } from "node:net";
import type { Event } from "../../../src/domain/event.js";
import type { Hold, Order } from "../../../src/domain/sale.js";
import { LockBusyError, LockUnavailableError } from "../../../src/domain/lock-errors.js";
import type { AppFixture } from "../../support/app-fixture.js";
import { ADMIN_TOKEN, INSTANCE_ID, problemCode, startAppFixture } from "../../support/app-fixture.js";
import { GateLock } from "../../support/gate-lock.js";

describe("server routes (inject)", () => {
  let fx: AppFixture;
  let general: Event;
  let seated: Event;
  before(async () => {
    fx = await startAppFixture();
    general = await fx.createEvent({ name: "General", capacity: 10, maxPerOrder: 4, maxPerCustomer: 6 });
    seated = await fx.createEvent({
      name: "Seated",
      seating: { sections: [{ name: "A", rows: 2, seatsPerRow: 3 }] },
    });
  });
  after(() => fx.close());

  const order = (eventId: string, payload: unknown, headers: Record<string, string> = {}) =>
    fx.app.inject({
      method: "POST",
      url: `/v1/events/${eventId}/orders`,
      payload: payload as object,
      headers,
    });

  it("creates an event with 201, Location and X-Served-By, and needs the admin token", async () => {
    const body = { name: "Night", capacity: 5 };
    const anonymous = await fx.app.inject({ method: "POST", url: "/v1/events", payload: body });
    assert.equal(anonymous.statusCode, 401);
    assert.equal(problemCode(anonymous), "unauthorized");
    const wrong = await fx.app.inject({
      method: "POST",
      url: "/v1/events",
      payload: body,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}x` },
    });
    assert.equal(problemCode(wrong), "unauthorized");
    const created = await fx.app.inject({
      method: "POST",
      url: "/v1/events",
      payload: body,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    });
    assert.equal(created.statusCode, 201);
    const event = created.json<Event>();
    assert.equal(created.headers.location, `/v1/events/${event.id}`);
    assert.equal(created.headers["x-served-by"], INSTANCE_ID);
    assert.deepEqual(
      { kind: event.kind, capacity: event.capacity, sold: event.sold, held: event.held, available: 5 },
      { kind: "general", capacity: 5, sold: 0, held: 0, available: event.available },
    );
  });

  it("refuses an event with both capacity and seating, or with neither", async () => {
    for (const payload of [
      { name: "x", capacity: 5, seating: { sections: [{ name: "A", rows: 1, seatsPerRow: 1 }] } },
      { name: "x" },
      { name: "x", capacity: 5, startsAt: "tomorrow" },
      { name: "x", seating: { sections: [{ name: "A-B", rows: 1, seatsPerRow: 1 }] } },
    ]) {
      const response = await fx.app.inject({
        method: "POST",
        url: "/v1/events",
        payload,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      assert.equal(response.statusCode, 422, JSON.stringify(payload));
      assert.equal(problemCode(response), "invalid_request");
    }
  });

  it("lists events a page at a time with a cursor", async () => {
    const first = await fx.app.inject({ method: "GET", url: "/v1/events?limit=1" });
    assert.equal(first.statusCode, 200);
    const page1 = first.json<{ events: Event[]; nextCursor: string | null }>();
    assert.equal(page1.events.length, 1);
    assert.ok(page1.nextCursor);
    const second = await fx.app.inject({
      method: "GET",
      url: `/v1/events?limit=100&cursor=${encodeURIComponent(page1.nextCursor)}`,
    });
    const page2 = second.json<{ events: Event[]; nextCursor: string | null }>();
    assert.equal(page2.nextCursor, null);
    const ids = [...page1.events, ...page2.events].map((e) => e.id);
    assert.ok(ids.includes(general.id) && ids.includes(seated.id));
    assert.equal(new Set(ids).size, ids.length);
    for (const bad of ["limit=0", "limit=101", "limit=abc", "limit=2.5", "other=1"]) {
      const response = await fx.app.inject({ method: "GET", url: `/v1/events?${bad}` });
      assert.equal(problemCode(response), "invalid_request", bad);
    }
  });

  it("answers 404 with the code that names what was asked for", async () => {
    const cases: [string, string, string][] = [
      ["GET", "/v1/events/nope", "event_not_found"],
      ["GET", "/v1/events/evt_01M8AKHCS1946YADPE8BEJQ35Q", "event_not_found"],
      ["GET", "/v1/events/nope/seats", "event_not_found"],
      ["GET", "/v1/orders/nope", "order_not_found"],
      ["GET", `/v1/orders/ord_${general.id.slice(4)}_01M8AKHCS1946YADPE8BEJQ35Q`, "order_not_found"],
      ["POST", "/v1/orders/nope/cancel", "order_not_found"],
      ["POST", "/v1/holds/nope/confirm", "hold_not_found"],
      [
        "POST",
        `/v1/holds/hld_01M8AKHCS1946YADPE8BEJQ35Q_01M8AKHCS1946YADPE8BEJQ35Q/confirm`,
        "hold_not_found",
      ],
      ["DELETE", "/v1/holds/nope", "hold_not_found"],
      ["GET", "/v1/holds/nope", "hold_not_found"],
      ["GET", "/v2/whatever", "not_found"],
    ];
    for (const [method, url, code] of cases) {
      const response = await fx.app.inject({ method: method as "GET", url });
      assert.equal(response.statusCode, 404, url);
      assert.equal(problemCode(response), code, url);
    }
    const unknownEvent = await order("evt_01M8AKHCS1946YADPE8BEJQ35Q", { customerId: "c", quantity: 1 });
    assert.equal(problemCode(unknownEvent), "event_not_found");
  });

  it("answers over-long ids with the code that names them, and malformed HTTP with X-Served-By", async () => {
    const long = await fx.app.inject({ method: "GET", url: `/v1/events/evt_${"X".repeat(500)}` });
    assert.equal(problemCode(long), "event_not_found");
    await fx.app.listen({ port: 0, host: "127.0.0.1" });
    const { port } = fx.app.server.address() as AddressInfo;
    const raw = await new Promise<string>((resolve, reject) => {
      const socket = net.connect({ port, host: "127.0.0.1" }, () => socket.write("GARBAGE / HTTP/9\r\n\r\n"));
      let text = "";
      socket.setTimeout(5000, () => socket.destroy(new Error("no answer")));
      socket.on("data", (chunk) => (text += chunk.toString()));
      socket.on("end", () => resolve(text));
      socket.on("error", reject);
    });
    assert.match(raw, /^HTTP\/1\.1 400 /);
    assert.match(raw, new RegExp(`X-Served-By: ${INSTANCE_ID}`));
    assert.match(raw, /Content-Type: application\/problem\+json/);
  });

  it("sells general admission, then says sold_out and customer_limit_reached", async () => {
    const event = await fx.createEvent({ name: "Small", capacity: 5, maxPerCustomer: 3 });
    const first = await order(event.id, { customerId: "alice", quantity: 3 });
    assert.equal(first.statusCode, 201);
    const { secret, ...sold } = first.json<Order & { secret: string }>();
    assert.equal(first.headers.location, `/v1/orders/${sold.id}`);
    assert.deepEqual([sold.status, sold.quantity, sold.seats], ["confirmed", 3, null]);
    assert.equal(
      problemCode(await order(event.id, { customerId: "alice", quantity: 1 })),
      "customer_limit_reached",
    );
    assert.equal(problemCode(await order(event.id, { customerId: "bob", quantity: 3 })), "sold_out");
    assert.equal((await order(event.id, { customerId: "bob", quantity: 2 })).statusCode, 201);
    const got = await fx.app.inject({
      method: "GET",
      url: `/v1/orders/${sold.id}`,
      headers: { "x-order-secret": secret },
    });
    assert.deepEqual(got.json(), sold);
    const after = (await fx.app.inject({ method: "GET", url: `/v1/events/${event.id}` })).json<Event>();
    assert.deepEqual([after.sold, after.held, after.available], [5, 0, 0]);
  });

  it("sells seats, names the taken ones in `seats`, and keeps the seat map in step", async () => {
    const first = await order(seated.id, { customerId: "c1", seats: ["A-1-1", "A-1-2"] });
    assert.equal(first.statusCode, 201);
    const clash = await order(seated.id, { customerId: "c2", seats: ["A-1-2", "A-1-3"] });
    assert.equal(clash.statusCode, 409);
    assert.equal(problemCode(clash), "seats_unavailable");
    assert.deepEqual(clash.json<{ seats: string[] }>().seats, ["A-1-2"]);
    const map = await fx.app.inject({ method: "GET", url: `/v1/events/${seated.id}/seats` });
    const seats = map
      .json<{ sections: { rows: { seats: { id: string; status: string }[] }[] }[] }>()
      .sections.flatMap((s) => s.rows.flatMap((r) => r.seats));
    assert.equal(seats.length, 6);
    assert.deepEqual(
      seats.filter((s) => s.status === "sold").map((s) => s.id),
      ["A-1-1", "A-1-2"],
    );
    assert.equal(
      problemCode(await order(seated.id, { customerId: "c3", seats: ["Z-1-1"] })),
      "invalid_request",
    );
    assert.equal(problemCode(await order(seated.id, { customerId: "c3", quantity: 1 })), "invalid_request");
    assert.equal(
      problemCode(await order(general.id, { customerId: "c3", seats: ["A-1-1"] })),
      "invalid_request",
    );
  });

  it("holds, confirms once, and answers 409 hold_not_active to a second confirm", async () => {
    const created = await fx.app.inject({
      method: "POST",
      url: `/v1/events/${general.id}/holds`,
      payload: { customerId: "h1", quantity: 2, ttlSeconds: 60 },
    });
    assert.equal(created.statusCode, 201);
    const hold = created.json<Hold & { secret: string }>();
    assert.equal(created.headers.location, `/v1/holds/${hold.id}`);
    assert.equal(hold.status, "active");
    const during = (await fx.app.inject({ method: "GET", url: `/v1/events/${general.id}` })).json<Event>();
    assert.equal(during.held, 2);
    const confirm = () =>
      fx.app.inject({
        method: "POST",
        url: `/v1/holds/${hold.id}/confirm`,
        headers: { "idempotency-key": "confirm-1", "x-order-secret": hold.secret },
      });
    const first = await confirm();
    assert.equal(first.statusCode, 201);
    const replay = await confirm();
    assert.equal(replay.statusCode, 201, "the same key replays the first answer");
    assert.equal(replay.json<Order>().id, first.json<Order>().id);
    const again = await fx.app.inject({
      method: "POST",
      url: `/v1/holds/${hold.id}/confirm`,
      headers: { "x-order-secret": hold.secret },
    });
    assert.equal(again.statusCode, 409);
    assert.equal(problemCode(again), "hold_not_active");
    const confirmed = (await fx.app.inject({ method: "GET", url: `/v1/events/${general.id}` })).json<Event>();
    assert.deepEqual([confirmed.held, confirmed.sold - during.sold], [0, 2]);
  });

  it("releases a hold with 204 and cancels an order exactly once", async () => {
    const before = (await fx.app.inject({ method: "GET", url: `/v1/events/${general.id}` })).json<Event>();
    const hold = (
      await fx.app.inject({
        method: "POST",
        url: `/v1/events/${general.id}/holds`,
        payload: { customerId: "r1", quantity: 1 },
      })
    ).json<Hold & { secret: string }>();
    for (let i = 0; i < 2; i++) {
      const released = await fx.app.inject({
        method: "DELETE",
        url: `/v1/holds/${hold.id}`,
        headers: { "x-order-secret": hold.secret },
      });
      assert.equal(released.statusCode, 204);
      assert.equal(released.headers["x-served-by"], INSTANCE_ID);
    }
    const sold = (await order(general.id, { customerId: "r2", quantity: 1 })).json<
      Order & { secret: string }
    >();
    for (let i = 0; i < 2; i++) {
      const cancelled = await fx.app.inject({
        method: "POST",
        url: `/v1/orders/${sold.id}/cancel`,
        headers: { "x-order-secret": sold.secret },
      });
      assert.equal(cancelled.statusCode, 200);
      assert.equal(cancelled.json<Order>().status, "cancelled");
    }
    const after = (await fx.app.inject({ method: "GET", url: `/v1/events/${general.id}` })).json<Event>();
    assert.deepEqual([after.sold, after.held, after.available], [before.sold, before.held, before.available]);
  });

  it("replays an Idempotency-Key with the same status and id, and refuses it with another body", async () => {
    const key = { "idempotency-key": "buy-once-1" };
    const first = await order(general.id, { customerId: "k1", quantity: 1 }, key);
    assert.equal(first.statusCode, 201);
    const replay = await order(general.id, { quantity: 1, customerId: "k1" }, key);
    assert.equal(replay.statusCode, 201);
    assert.equal(replay.json<Order>().id, first.json<Order>().id);
    const reused = await order(general.id, { customerId: "k1", quantity: 2 }, key);
    assert.equal(reused.statusCode, 422);
    assert.equal(problemCode(reused), "idempotency_key_reused");
    for (const bad of ["", " lead", "é", "x".repeat(201), "tab\there"]) {
      const response = await order(general.id, { customerId: "k1", quantity: 1 }, { "idempotency-key": bad });
      assert.equal(response.statusCode, 422, JSON.stringify(bad));
    }
  });

  it("counts tickets sold: a purchase adds its quantity, a hold or a replayed answer adds nothing", async () => {
    const event = await fx.createEvent({ name: "Counted", capacity: 10, maxPerOrder: 4, maxPerCustomer: 6 });
    const sold = async (): Promise<number> => {
      const body = (await fx.app.inject({ method: "GET", url: "/metrics" })).body;
      const line = /^boxoffice_tickets_sold_total(?:\{[^}]*\})? (\d+)/m.exec(body);
      return Number(line?.[1] ?? 0);
    };
    const before = await sold();
    const held = await fx.app.inject({
      method: "POST",
      url: `/v1/events/${event.id}/holds`,
      payload: { customerId: "m1", quantity: 3, ttlSeconds: 60 },
    });
    assert.equal(held.statusCode, 201);
    assert.equal(await sold(), before, "a hold sells nothing");
    const key = { "idempotency-key": "count-1" };
    assert.equal((await order(event.id, { customerId: "m2", quantity: 2 }, key)).statusCode, 201);
    assert.equal(await sold(), before + 2);
    assert.equal((await order(event.id, { customerId: "m2", quantity: 2 }, key)).statusCode, 201);
    assert.equal(await sold(), before + 2, "a replayed answer sells nothing new");
  });

  it("answers the operations endpoints and the OpenAPI document", async () => {
    const health = await fx.app.inject({ method: "GET", url: "/health" });
    assert.deepEqual(health.json(), { status: "ok" });
    const ready = await fx.app.inject({ method: "GET", url: "/ready" });
    assert.equal(ready.statusCode, 200);
    const metrics = await fx.app.inject({ method: "GET", url: "/metrics" });
    assert.equal(metrics.statusCode, 200);
    for (const name of [
      "boxoffice_http_requests_total",
      "boxoffice_http_request_duration_seconds",
      "boxoffice_tickets_sold_total",
      "boxoffice_sold_out_total",
      "boxoffice_sell_batch_size",
      "boxoffice_lock_wait_seconds",
    ]) {
      assert.match(metrics.body, new RegExp(`^# TYPE ${name} `, "m"), name);
    }
    assert.match(metrics.body, /boxoffice_http_requests_total\{[^}]*route="\/v1\/events\/:eventId\/orders"/);
    assert.match(metrics.body, /^boxoffice_tickets_sold_total\{[^}]*\} [1-9]/m);
  });
});

describe("server answers 503 and 409 when it cannot go on", () => {
  let fx: AppFixture;
  let lock: GateLock;
  let event: Event;
  before(async () => {
    lock = new GateLock();
    fx = await startAppFixture({ lock, sellPath: { maxQueueTotal: 2, maxQueuePerEvent: 2 } });
    event = await fx.createEvent({ name: "Busy", capacity: 100 });
  });
  after(() => fx.close());

  const buy = (customerId: string, headers: Record<string, string> = {}) =>
    fx.app.inject({
      method: "POST",
      url: `/v1/events/${event.id}/orders`,
      payload: { customerId, quantity: 1 },
      headers,
    });

  async function sold(): Promise<number> {
    return (await fx.app.inject({ method: "GET", url: `/v1/events/${event.id}` })).json<Event>().sold;
  }

  it("maps a busy or unreachable lock to 503 unavailable with Retry-After, and sells nothing", async () => {
    for (const error of [new LockBusyError("event:x", 10), new LockUnavailableError("down")]) {
      lock.failWith = error;
      const response = await buy("c");
      assert.equal(response.statusCode, 503);
      assert.equal(problemCode(response), "unavailable");
      assert.equal(response.headers["retry-after"], "1");
    }
    lock.failWith = null;
    assert.equal(await sold(), 0);
  });

  it("answers 409 idempotency_key_in_use while the same key runs here", async () => {
    lock.shut();
    const entered = lock.entered;
    const first = buy("k", { "idempotency-key": "same" });
    await lock.enteredAtLeast(entered + 1);
    const second = await buy("k", { "idempotency-key": "same" });
    assert.equal(second.statusCode, 409);
    assert.equal(problemCode(second), "idempotency_key_in_use");
    assert.equal(second.headers["retry-after"], "1");
    lock.open();
    assert.equal((await first).statusCode, 201);
    assert.equal(await sold(), 1);
  });

  it("refuses at once with 503 when the queues are full (admission control)", async () => {
    lock.shut();
    const entered = lock.entered;
    const running = buy("q0");
    await lock.enteredAtLeast(entered + 1);
    // The running batch left the queue; two more fill it; the next is refused.
    const queued = [buy("q1"), buy("q2")];
    await new Promise((resolve) => setImmediate(resolve));
    const refused = await buy("q3");
    assert.equal(refused.statusCode, 503);
    assert.equal(problemCode(refused), "unavailable");
    lock.open();
    for (const response of await Promise.all([running, ...queued])) assert.equal(response.statusCode, 201);
    assert.equal(await sold(), 4);
  });

  it("says not ready (503 with Retry-After) when the lock does not answer", async () => {
    lock.pingFailure = new LockUnavailableError("down");
    const response = await fx.app.inject({ method: "GET", url: "/ready" });
    lock.pingFailure = null;
    assert.equal(response.statusCode, 503);
    assert.equal(problemCode(response), "unavailable");
    assert.equal(response.headers["retry-after"], "1");
  });
});
