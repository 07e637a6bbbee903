/**
 * Every kind of bad input gets its listed 4xx code as problem+json (with X-Served-By), and the store is
 * unchanged afterwards.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Event } from "../../../src/domain/event.js";
import type { AppFixture } from "../../support/app-fixture.js";
import { ADMIN_TOKEN, problemCode, startAppFixture } from "../../support/app-fixture.js";
import { badInputs } from "../../support/bad-inputs.js";

describe("bad input (inject)", () => {
  let fx: AppFixture;
  let general: Event;
  let seated: Event;
  before(async () => {
    fx = await startAppFixture();
    general = await fx.createEvent({ name: "General", capacity: 10, maxPerOrder: 4 });
    seated = await fx.createEvent({
      name: "Seated",
      seating: { sections: [{ name: "A", rows: 2, seatsPerRow: 3 }] },
    });
  });
  after(() => fx.close());

  const state = async () => {
    const events = (await fx.app.inject({ method: "GET", url: "/v1/events?limit=100" })).json<{
      events: Event[];
    }>();
    return events.events.map((e) => [e.id, e.sold, e.held, e.available]);
  };

  it("refuses at least 30 kinds with the listed code and changes nothing", async () => {
    const before = await state();
    const cases = badInputs({ generalId: general.id, seatedId: seated.id, adminToken: ADMIN_TOKEN });
    assert.ok(cases.length >= 30);
    for (const bad of cases) {
      const response = await fx.app.inject({
        method: bad.method,
        url: bad.url,
        headers: bad.headers,
        ...(bad.body === undefined ? {} : { payload: bad.body }),
      });
      assert.equal(response.statusCode, bad.status, `${bad.name}: ${response.body}`);
      assert.equal(problemCode(response), bad.code, bad.name);
    }
    assert.deepEqual(await state(), before);
    // The prototype of plain objects was not touched by a __proto__ body.
    assert.equal(({} as Record<string, unknown>).admin, undefined);
  });
});
