/**
 * The sale's routes through inject(): admin actions, PATCH and the report need the admin token; bad
 * bodies (a price from the buyer, an empty PATCH, an unknown currency shape, overlapping zones) are 422
 * and change nothing; refusals map to their documented statuses. The store is the real SQLite store.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Event } from "../../../src/domain/event.js";
import type { EventReport } from "../../../src/domain/report.js";
import type { Hold, Order } from "../../../src/domain/sale.js";
import { newEventId, newHoldId } from "../../../src/domain/ids.js";
import type { AppFixture } from "../../support/app-fixture.js";
import { ADMIN_TOKEN, problemCode, startAppFixture } from "../../support/app-fixture.js";

describe("sale routes (inject)", () => {
  let fx: AppFixture;
  let event: Event;
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
  before(async () => {
    fx = await startAppFixture();
    event = await fx.createEvent({
      name: "Typed",
      capacity: 10,
      currency: "CHF",
      ticketTypes: [
        { id: "adult", name: "Adult", price: 5000, quota: 4 },
        { id: "child", name: "Child", price: 1500, maxPerOrder: 2 },
      ],
    });
  });
  after(() => fx.close());

  const post = (url: string, payload: object = {}, headers: Record<string, string> = {}) =>
    fx.app.inject({ method: "POST", url, payload, headers });

  it("needs the admin token for publish, pause, resume, close, PATCH and the report", async () => {
    for (const action of ["publish", "pause", "resume", "close"]) {
      const anonymous = await post(`/v1/events/${event.id}/${action}`);
      assert.equal(anonymous.statusCode, 401);
      assert.equal(problemCode(anonymous), "unauthorized");
    }
    const patch = await fx.app.inject({
      method: "PATCH",
      url: `/v1/events/${event.id}`,
      payload: { capacity: 1 },
    });
    assert.equal(patch.statusCode, 401);
    const report = await fx.app.inject({ method: "GET", url: `/v1/events/${event.id}/report` });
    assert.equal(report.statusCode, 401);
    assert.equal((await fx.store.getEvent(event.id))?.capacity, 10, "nothing changed");
  });

  it("refuses any price the buyer sends, and prices the order itself", async () => {
    const bodies = [
      { customerId: "c", items: [{ ticketTypeId: "adult", quantity: 1, unitPrice: 1 }] },
      { customerId: "c", items: [{ ticketTypeId: "adult", quantity: 1 }], total: 1 },
      { customerId: "c", items: [{ ticketTypeId: "adult", quantity: 1 }], currency: "EUR" },
      { customerId: "c", items: [{ ticketTypeId: "adult", quantity: 1 }], quantity: 1 },
      { customerId: "c", items: [] },
      { customerId: "c", items: [{ ticketTypeId: "Adult!", quantity: 1 }] },
    ];
    for (const body of bodies) {
      const answer = await post(`/v1/events/${event.id}/orders`, body);
      assert.equal(answer.statusCode, 422, JSON.stringify(body));
      assert.equal(problemCode(answer), "invalid_request");
    }
    assert.equal((await fx.store.getEvent(event.id))?.sold, 0);
    const plain = await post(`/v1/events/${event.id}/orders`, { customerId: "c", quantity: 1 });
    assert.equal(plain.statusCode, 422, "several ticket types: a plain quantity says nothing of which");
    const ok = await post(`/v1/events/${event.id}/orders`, {
      customerId: "c",
      items: [
        { ticketTypeId: "adult", quantity: 1 },
        { ticketTypeId: "child", quantity: 2 },
      ],
    });
    assert.equal(ok.statusCode, 201, ok.body);
    const order = ok.json<Order>();
    assert.deepEqual([order.total, order.currency, order.quantity], [8000, "CHF", 3]);
  });

  it("refuses bad event definitions with 422", async () => {
    const bad = [
      { name: "x", capacity: 5, currency: "eur" },
      { name: "x", capacity: 5, ticketTypes: [{ name: "A", price: -1 }] },
      { name: "x", capacity: 5, ticketTypes: [{ name: "A", price: 1.5 }] },
      { name: "x", capacity: 5, ticketTypes: [{ name: "A", price: 1, quota: 6 }] },
      {
        name: "x",
        capacity: 5,
        ticketTypes: [
          { id: "a", name: "A", price: 1 },
          { id: "a", name: "B", price: 1 },
        ],
      },
      {
        name: "x",
        seating: { sections: [{ name: "A", rows: 4, seatsPerRow: 2 }] },
        priceZones: [
          { name: "F", price: 1, section: "A", rows: { from: 1, to: 2 } },
          { name: "G", price: 1, section: "A", rows: { from: 2, to: 3 } },
        ],
      },
      { name: "x", capacity: 5, salesStartAt: "2030-01-02T00:00:00Z", salesEndAt: "2030-01-01T00:00:00Z" },
      { name: "x", capacity: 5, salesStartAt: "tomorrow" },
      { name: "x", capacity: 5, state: "on_sale" },
    ];
    for (const body of bad) {
      const answer = await post("/v1/events", body, admin);
      assert.equal(answer.statusCode, 422, JSON.stringify(body));
      assert.equal(problemCode(answer), "invalid_request");
    }
  });

  it("maps the lifecycle's refusals: 409 sale_paused, invalid_transition; 404 for an unknown event", async () => {
    const draft = await fx.createEvent({ name: "Draft", capacity: 3, state: "draft" });
    const refused = await post(`/v1/events/${draft.id}/orders`, { customerId: "c", quantity: 1 });
    assert.equal(refused.statusCode, 409);
    assert.equal(problemCode(refused), "sale_not_open");
    const resume = await post(`/v1/events/${draft.id}/resume`, {}, admin);
    assert.equal(resume.statusCode, 409);
    assert.equal(problemCode(resume), "invalid_transition");
    assert.equal((await post(`/v1/events/${draft.id}/publish`, {}, admin)).json<Event>().state, "on_sale");
    assert.equal((await post(`/v1/events/${draft.id}/pause`, {}, admin)).json<Event>().state, "paused");
    const paused = await post(`/v1/events/${draft.id}/holds`, { customerId: "c", quantity: 1 });
    assert.equal(paused.statusCode, 409);
    assert.equal(problemCode(paused), "sale_paused");
    const unknown = await post(`/v1/events/${newEventId()}/pause`, {}, admin);
    assert.equal(unknown.statusCode, 404);
    assert.equal(problemCode(unknown), "event_not_found");
    const report = await fx.app.inject({
      method: "GET",
      url: `/v1/events/${newEventId()}/report`,
      headers: admin,
    });
    assert.equal(report.statusCode, 404);
  });

  it("shows a draft only to the admin: left out of the list, 404 when read or its seats asked, shown once published", async () => {
    const draft = await fx.createEvent({
      name: "Unannounced",
      state: "draft",
      seating: { sections: [{ name: "A", rows: 1, seatsPerRow: 2 }] },
    });
    const get = (url: string, headers: Record<string, string> = {}) =>
      fx.app.inject({ method: "GET", url, headers });
    const listed = async (headers: Record<string, string> = {}) => {
      const ids: string[] = [];
      let cursor: string | null = null;
      do {
        const page = await get(`/v1/events?limit=1${cursor ? `&cursor=${cursor}` : ""}`, headers);
        assert.equal(page.statusCode, 200);
        const body = page.json<{ events: Event[]; nextCursor: string | null }>();
        ids.push(...body.events.map((e) => e.id));
        cursor = body.nextCursor;
      } while (cursor !== null);
      return ids;
    };
    assert.ok(!(await listed()).includes(draft.id), "anonymous list leaves the draft out");
    assert.ok((await listed()).includes(event.id), "published events are listed");
    assert.ok((await listed(admin)).includes(draft.id), "the admin's list shows it");
    for (const url of [`/v1/events/${draft.id}`, `/v1/events/${draft.id}/seats`]) {
      const anonymous = await get(url);
      assert.equal(anonymous.statusCode, 404, url);
      assert.equal(problemCode(anonymous), "event_not_found");
      const wrongToken = await get(url, { authorization: "Bearer not-the-token" });
      assert.equal(wrongToken.statusCode, 404, url);
      assert.equal((await get(url, admin)).statusCode, 200, url);
    }
    assert.equal((await post(`/v1/events/${draft.id}/publish`, {}, admin)).statusCode, 200);
    assert.equal((await get(`/v1/events/${draft.id}`)).statusCode, 200);
    assert.equal((await get(`/v1/events/${draft.id}/seats`)).statusCode, 200);
    assert.ok((await listed()).includes(draft.id));
  });

  it("PATCH: an empty body is 422, a capacity below sold + held 409, a good edit 200", async () => {
    const target = await fx.createEvent({ name: "Edit", capacity: 5 });
    const patch = (payload: object) =>
      fx.app.inject({ method: "PATCH", url: `/v1/events/${target.id}`, payload, headers: admin });
    assert.equal((await patch({})).statusCode, 422);
    assert.equal((await patch({ price: 1 })).statusCode, 422);
    assert.equal(
      (await post(`/v1/events/${target.id}/orders`, { customerId: "c", quantity: 3 })).statusCode,
      201,
    );
    const below = await patch({ capacity: 2 });
    assert.equal(below.statusCode, 409);
    assert.equal(problemCode(below), "capacity_below_taken");
    const ok = await patch({ capacity: 3, description: "Moved to the big hall", salesEndAt: null });
    assert.equal(ok.statusCode, 200, ok.body);
    assert.deepEqual(
      [ok.json<Event>().capacity, ok.json<Event>().available, ok.json<Event>().description],
      [3, 0, "Moved to the big hall"],
    );
  });

  it("extend, confirm with a paymentReference, and the report", async () => {
    const held = await post(`/v1/events/${event.id}/holds`, {
      customerId: "h",
      items: [{ ticketTypeId: "adult", quantity: 2 }],
      ttlSeconds: 60,
    });
    assert.equal(held.statusCode, 201, held.body);
    const hold = held.json<Hold & { secret: string }>();
    const owner = { "x-order-secret": hold.secret };
    const stranger = await post(`/v1/holds/${hold.id}/extend`, { ttlSeconds: 600 });
    assert.equal(stranger.statusCode, 404, "without the hold's secret, no extension");
    const badExtend = await post(`/v1/holds/${hold.id}/extend`, { ttlSeconds: 5 }, owner);
    assert.equal(badExtend.statusCode, 422);
    const extended = await post(`/v1/holds/${hold.id}/extend`, { ttlSeconds: 600 }, owner);
    assert.equal(extended.statusCode, 200, extended.body);
    assert.ok(Date.parse(extended.json<Hold>().expiresAt) > Date.parse(hold.expiresAt));
    const missing = await post(`/v1/holds/${newHoldId(event.id)}/extend`, {}, admin);
    assert.equal(missing.statusCode, 404);
    const badReference = await post(`/v1/holds/${hold.id}/confirm`, { paymentReference: "a\nb" }, owner);
    assert.equal(badReference.statusCode, 422);
    const confirmed = await post(`/v1/holds/${hold.id}/confirm`, { paymentReference: "ch_1Abc" }, owner);
    assert.equal(confirmed.statusCode, 201, confirmed.body);
    assert.equal(confirmed.json<Order>().paymentReference, "ch_1Abc");
    const report = await fx.app.inject({
      method: "GET",
      url: `/v1/events/${event.id}/report`,
      headers: admin,
    });
    assert.equal(report.statusCode, 200);
    const body = report.json<EventReport>();
    assert.deepEqual(
      body.tiers.map((t) => [t.id, t.sold, t.held, t.revenue]),
      [
        ["adult", 3, 0, 15000],
        ["child", 2, 0, 3000],
      ],
    );
    assert.equal(body.revenue, 18000);
  });
});
