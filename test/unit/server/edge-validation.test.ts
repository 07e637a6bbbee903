/**
 * Hostile text is refused at the edge: every string a request can carry has a pattern in the schema
 * (seat ids `<section>-<row>-<seat>`, customer ids and names printable valid Unicode, the cursor an
 * event id), so NUL, control characters and lone surrogates get 422 problem+json before the sell path,
 * nothing changes, and an Idempotency-Key sent with a refused body stays unused.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Event } from "../../../src/domain/event.js";
import { SEAT_ID_PATTERN } from "../../../src/domain/event.js";
import type { AppFixture } from "../../support/app-fixture.js";
import { ADMIN_TOKEN, problemCode, startAppFixture } from "../../support/app-fixture.js";

describe("hostile text at the edge (inject)", () => {
  let fx: AppFixture;
  let general: Event;
  let seated: Event;
  before(async () => {
    fx = await startAppFixture();
    general = await fx.createEvent({ name: "General", capacity: 10, maxPerOrder: 4 });
    seated = await fx.createEvent({
      name: "Seated",
      seating: {
        sections: [
          { name: "Upper 2.B", rows: 2, seatsPerRow: 3 },
          { name: "A", rows: 1, seatsPerRow: 2 },
        ],
      },
    });
  });
  after(() => fx.close());

  const state = async () => {
    const page = (await fx.app.inject({ method: "GET", url: "/v1/events?limit=100" })).json<{
      events: Event[];
    }>();
    const seats = (await fx.app.inject({ method: "GET", url: `/v1/events/${seated.id}/seats` })).body;
    // How many batches the sell path ran: a request refused at the edge never reaches it.
    const metrics = (await fx.app.inject({ method: "GET", url: "/metrics" })).body;
    const batches = /^boxoffice_sell_batch_size_count\{[^}]*\} (\d+)$/m.exec(metrics)?.[1] ?? "0";
    return { events: page.events.map((e) => [e.id, e.name, e.sold, e.held]), seats, batches };
  };
  const post = (url: string, body: string, headers: Record<string, string> = {}) =>
    fx.app.inject({
      method: "POST",
      url,
      headers: { "content-type": "application/json", ...headers },
      payload: body,
    });

  /** Raw JSON bodies: `\\u0000` and `\\ud800` reach the server as escapes, and JSON.parse makes them real. */
  const hostileOrders: [string, string, string][] = [
    ["NUL in a seat id", "seated", `{"customerId":"c","seats":["A-1-\\u0000"]}`],
    ["a lone surrogate in a seat id", "seated", `{"customerId":"c","seats":["A\\ud800-1-1"]}`],
    ["a control character in a seat id", "seated", `{"customerId":"c","seats":["A-1-1\\u001b"]}`],
    ["a seat id with a leading zero", "seated", `{"customerId":"c","seats":["A-01-1"]}`],
    ["a seat id with SQL in it", "seated", `{"customerId":"c","seats":["A-1-1'); DROP TABLE orders; --"]}`],
    [
      "a seat id of 45 characters",
      "seated",
      JSON.stringify({ customerId: "c", seats: [`${"S".repeat(33)}-1-1`] }),
    ],
    ["a seat id without a row", "seated", `{"customerId":"c","seats":["A-1"]}`],
    ["a lone surrogate in customerId", "general", `{"customerId":"\\udc00","quantity":1}`],
    ["NUL in customerId", "general", `{"customerId":"a\\u0000","quantity":1}`],
    [
      "a lone high surrogate at the end of customerId",
      "general",
      `{"customerId":"buyer\\ud83c","quantity":1}`,
    ],
  ];

  it("answers 422 problem+json for hostile seat ids and customer ids, keyed or not, and changes nothing", async () => {
    const before = await state();
    for (const [name, which, body] of hostileOrders) {
      const eventId = which === "seated" ? seated.id : general.id;
      for (const path of ["orders", "holds"]) {
        const keys: Record<string, string>[] = [{}, { "idempotency-key": `edge-${path}` }];
        for (const headers of keys) {
          const response = await post(`/v1/events/${eventId}/${path}`, body, headers);
          assert.equal(response.statusCode, 422, `${name} (${path}): ${response.body}`);
          assert.equal(problemCode(response), "invalid_request", name);
          assert.ok(response.json<{ detail: string }>().detail.length > 0, name);
        }
      }
    }
    assert.deepEqual(await state(), before);
    // The keys sent with refused bodies were never used: with a good body they sell, then replay.
    const good = `{"customerId":"c","seats":["Upper 2.B-2-3"]}`;
    const first = await post(`/v1/events/${seated.id}/orders`, good, { "idempotency-key": "edge-orders" });
    assert.equal(first.statusCode, 201, first.body);
    const again = await post(`/v1/events/${seated.id}/orders`, good, { "idempotency-key": "edge-orders" });
    assert.equal(again.statusCode, 201);
    assert.equal(again.json<{ id: string }>().id, first.json<{ id: string }>().id);
  });

  it("refuses hostile event and section names, and a cursor that is not an event id", async () => {
    const before = await state();
    const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
    for (const body of [
      `{"name":"Night\\u0000","capacity":5}`,
      `{"name":"\\ud800 night","capacity":5}`,
      `{"name":"bell\\u0007","capacity":5}`,
      `{"name":"ok","seating":{"sections":[{"name":"A-B","rows":1,"seatsPerRow":1}]}}`,
      `{"name":"ok","seating":{"sections":[{"name":"A\\u0000","rows":1,"seatsPerRow":1}]}}`,
    ]) {
      const response = await post("/v1/events", body, admin);
      assert.equal(response.statusCode, 422, `${body}: ${response.body}`);
      assert.equal(problemCode(response), "invalid_request");
    }
    for (const cursor of ["%00", "evt_%ED%A0%80", "x", "' OR 1=1 --"]) {
      const response = await fx.app.inject({ method: "GET", url: `/v1/events?cursor=${cursor}` });
      assert.equal(response.statusCode, 422, `${cursor}: ${response.body}`);
      assert.equal(problemCode(response), "invalid_request");
    }
    assert.deepEqual(await state(), before);
  });

  it("takes every seat id of the seat map, and the OpenAPI document shows the pattern", async () => {
    const map = (await fx.app.inject({ method: "GET", url: `/v1/events/${seated.id}/seats` })).json<{
      sections: { rows: { seats: { id: string }[] }[] }[];
    }>();
    const ids = map.sections.flatMap((s) => s.rows.flatMap((r) => r.seats.map((seat) => seat.id)));
    assert.equal(ids.length, 8);
    for (const id of ids) assert.match(id, new RegExp(SEAT_ID_PATTERN, "u"));
    const hold = await post(
      `/v1/events/${seated.id}/holds`,
      JSON.stringify({ customerId: "all", seats: ids.slice(0, 4) }),
    );
    assert.equal(hold.statusCode, 201, hold.body);
    const openApi = (await fx.app.inject({ method: "GET", url: "/openapi.json" })).json<{
      paths: Record<
        string,
        Record<string, { requestBody: { content: Record<string, { schema: unknown }> } }>
      >;
    }>();
    const schema = openApi.paths["/v1/events/{eventId}/orders"]?.post?.requestBody.content["application/json"]
      ?.schema as { properties: { seats: { items: { pattern: string } } } };
    assert.equal(schema.properties.seats.items.pattern, SEAT_ID_PATTERN);
  });
});
