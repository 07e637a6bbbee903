/**
 * The webhook admin API through inject() on the real SQLite store: the admin token is required, bad
 * input is a 422 problem that changes nothing, the secret is shown once, ids that are not ids are 404.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { AppFixture } from "../../support/app-fixture.js";
import { ADMIN_TOKEN, problemCode, startAppFixture } from "../../support/app-fixture.js";

describe("webhook admin API", () => {
  let fx: AppFixture;
  before(async () => {
    fx = await startAppFixture();
  });
  after(() => fx.close());
  const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };
  const create = (payload: unknown, headers: Record<string, string> = admin) =>
    fx.app.inject({ method: "POST", url: "/v1/webhooks", headers, payload: payload as object });
  const list = async () =>
    (await fx.app.inject({ method: "GET", url: "/v1/webhooks?limit=100", headers: admin })).json<{
      endpoints: unknown[];
    }>().endpoints;

  it("refuses every route without the admin token, or with a wrong one", async () => {
    for (const [method, url] of [
      ["POST", "/v1/webhooks"],
      ["GET", "/v1/webhooks"],
      ["GET", "/v1/webhooks/whe_01JDZ4K8Q0ABCDEFGHJKMNPQRS"],
      ["DELETE", "/v1/webhooks/whe_01JDZ4K8Q0ABCDEFGHJKMNPQRS"],
      ["GET", "/v1/webhooks/deliveries"],
      ["GET", "/v1/webhooks/deliveries/dlv_01JDZ4K8Q0ABCDEFGHJKMNPQRS"],
      ["POST", "/v1/webhooks/deliveries/dlv_01JDZ4K8Q0ABCDEFGHJKMNPQRS/replay"],
    ] as const) {
      for (const headers of [{}, { authorization: "Bearer wrong-token-0123456789" }]) {
        const response = await fx.app.inject({
          method,
          url,
          headers,
          payload: method === "POST" ? {} : undefined,
        });
        assert.equal(response.statusCode, 401, `${method} ${url}`);
        assert.equal(problemCode(response), "unauthorized");
      }
    }
    assert.deepEqual(await list(), []);
  });

  it("refuses bad endpoints with 422 and stores nothing", async () => {
    for (const payload of [
      {},
      { url: "ftp://example.com/" },
      { url: "https://user:pw@example.com/" },
      { url: "https://example.com/#x" },
      { url: "http://" },
      { url: `https://example.com/${"a".repeat(2000)}` },
      { url: "https://example.com/", eventTypes: ["order.refunded"] },
      { url: "https://example.com/", eventTypes: ["order.created", "order.created"] },
      { url: "https://example.com/", enabled: "yes" },
      { url: "https://example.com/", secret: "whsec_mine" },
      { url: ["https://example.com/"] },
    ]) {
      const response = await create(payload);
      assert.equal(response.statusCode, 422, JSON.stringify(payload));
      assert.equal(problemCode(response), "invalid_request");
    }
    assert.deepEqual(await list(), []);
  });

  it("shows the secret once, then never; reads, lists, deletes", async () => {
    const created = await create({ url: "https://hooks.example.com/a", eventTypes: ["order.created"] });
    assert.equal(created.statusCode, 201, created.body);
    const body = created.json<{
      id: string;
      secret: string;
      url: string;
      enabled: boolean;
      eventTypes: string[];
    }>();
    assert.match(body.secret, /^whsec_[A-Za-z0-9+/]{32}$/);
    assert.equal(created.headers.location, `/v1/webhooks/${body.id}`);
    assert.equal(created.headers["cache-control"], "no-store");
    assert.deepEqual(
      [body.url, body.enabled, body.eventTypes],
      ["https://hooks.example.com/a", true, ["order.created"]],
    );
    const read = await fx.app.inject({ method: "GET", url: `/v1/webhooks/${body.id}`, headers: admin });
    assert.equal(read.statusCode, 200);
    assert.equal(read.json<{ secret?: string }>().secret, undefined);
    assert.ok(!JSON.stringify(await list()).includes(body.secret));
    const removed = await fx.app.inject({ method: "DELETE", url: `/v1/webhooks/${body.id}`, headers: admin });
    assert.equal(removed.statusCode, 204);
    const again = await fx.app.inject({ method: "DELETE", url: `/v1/webhooks/${body.id}`, headers: admin });
    assert.equal(problemCode(again), "webhook_not_found");
  });

  it("answers 404 for ids that are not ids, and 422 for bad filters and cursors", async () => {
    for (const url of ["/v1/webhooks/nope", "/v1/webhooks/whe_01JDZ4K8Q0ABCDEFGHJKMNPQRS"]) {
      assert.equal(
        problemCode(await fx.app.inject({ method: "GET", url, headers: admin })),
        "webhook_not_found",
      );
    }
    for (const url of [
      "/v1/webhooks/deliveries/x",
      "/v1/webhooks/deliveries/dlv_01JDZ4K8Q0ABCDEFGHJKMNPQRS",
    ]) {
      assert.equal(
        problemCode(await fx.app.inject({ method: "GET", url, headers: admin })),
        "delivery_not_found",
      );
      const replay = await fx.app.inject({ method: "POST", url: `${url}/replay`, headers: admin });
      assert.equal(problemCode(replay), "delivery_not_found");
    }
    for (const query of [
      "status=lost",
      "limit=0",
      "limit=101",
      "cursor=%27%20OR%201%3D1",
      "endpointId=x",
      "extra=1",
    ]) {
      const response = await fx.app.inject({
        method: "GET",
        url: `/v1/webhooks/deliveries?${query}`,
        headers: admin,
      });
      assert.equal(response.statusCode, 422, query);
    }
    const empty = await fx.app.inject({
      method: "GET",
      url: "/v1/webhooks/deliveries?status=failed",
      headers: admin,
    });
    assert.deepEqual(empty.json(), { deliveries: [], nextCursor: null });
  });
});
