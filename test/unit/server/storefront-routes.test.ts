/**
 * The storefront's pages and files as an instance serves them (headers, content types, a fixed list of
 * files), and the one API answer the storefront relies on to find a waiting room: GET …/queue says
 * waiting_room_not_found for an event without a room before it asks for a Queue-Token.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import type { AppFixture } from "../../support/app-fixture.js";
import { ADMIN_TOKEN, startAppFixture } from "../../support/app-fixture.js";

describe("storefront routes", () => {
  let fx: AppFixture;
  before(async () => {
    fx = await startAppFixture();
  });
  after(() => fx?.close());

  it("serves the pages and their files with a strict CSP, nosniff and no referrer", async () => {
    const cases: [string, RegExp][] = [
      ["/", /^text\/html/],
      ["/events/evt_anything", /^text\/html/],
      ["/orders/ord_anything", /^text\/html/],
      ["/storefront/event.js", /^text\/javascript/],
      ["/storefront/api.js", /^text\/javascript/],
      ["/storefront/storefront.css", /^text\/css/],
    ];
    for (const [url, type] of cases) {
      const answer = await fx.app.inject({ url });
      assert.equal(answer.statusCode, 200, url);
      assert.match(String(answer.headers["content-type"]), type, url);
      const csp = String(answer.headers["content-security-policy"]);
      assert.match(csp, /default-src 'none'/);
      assert.match(csp, /script-src 'self';/);
      assert.match(csp, /frame-ancestors 'none'/);
      assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
      assert.equal(answer.headers["x-content-type-options"], "nosniff");
      assert.equal(answer.headers["referrer-policy"], "no-referrer");
    }
    const page = await fx.app.inject({ url: "/" });
    assert.doesNotMatch(page.body, /<script>|\son[a-z]+=/i, "no inline script or handler");
  });

  it("serves only its own files", async () => {
    for (const url of [
      "/storefront/../../package.json",
      "/storefront/%2e%2e/%2e%2e/package.json",
      "/storefront/index.html.bak",
      "/storefront/",
      "/storefront/storefront-routes.js",
    ]) {
      const answer = await fx.app.inject({ url });
      assert.equal(answer.statusCode, 404, url);
      assert.match(String(answer.headers["content-type"]), /problem\+json/, url);
    }
  });

  it("tells whether an event has a waiting room before asking for a Queue-Token", async () => {
    const plain = (await fx.createEvent({ name: "No room", capacity: 10 })).id;
    const roomed = (await fx.createEvent({ name: "A room", capacity: 10 })).id;
    const put = await fx.app.inject({
      method: "PUT",
      url: `/v1/events/${roomed}/waiting-room`,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      payload: { admissionRatePerSecond: 10 },
    });
    assert.equal(put.statusCode, 201, put.body);
    const ask = (eventId: string, headers: Record<string, string> = {}) =>
      fx.app.inject({ url: `/v1/events/${eventId}/queue`, headers });
    const headerSets: Record<string, string>[] = [{}, { "queue-token": "forged.token" }];
    for (const headers of headerSets) {
      const none = await ask(plain, headers);
      assert.equal(none.statusCode, 404);
      assert.equal(none.json().code, "waiting_room_not_found");
      const some = await ask(roomed, headers);
      assert.equal(some.statusCode, 403);
      assert.equal(some.json().code, "queue_token_invalid");
    }
  });
});
