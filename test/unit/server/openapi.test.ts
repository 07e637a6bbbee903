/**
 * /openapi.json parses as OpenAPI 3.1, lists every route the server answers, and is byte for byte the
 * published document.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { AppFixture } from "../../support/app-fixture.js";
import { startAppFixture } from "../../support/app-fixture.js";

/** The contract's routes (docs/api.md), written out here independently of the route table. */
const CONTRACT: [string, string][] = [
  ["post", "/v1/events"],
  ["get", "/v1/events"],
  ["get", "/v1/events/{eventId}"],
  ["get", "/v1/events/{eventId}/seats"],
  ["post", "/v1/events/{eventId}/orders"],
  ["post", "/v1/events/{eventId}/holds"],
  ["post", "/v1/holds/{holdId}/confirm"],
  ["delete", "/v1/holds/{holdId}"],
  ["get", "/v1/orders/{orderId}"],
  ["post", "/v1/orders/{orderId}/cancel"],
  ["get", "/health"],
  ["get", "/ready"],
  ["get", "/metrics"],
  ["post", "/v1/events/{eventId}/publish"],
  ["post", "/v1/events/{eventId}/pause"],
  ["post", "/v1/events/{eventId}/resume"],
  ["post", "/v1/events/{eventId}/close"],
  ["patch", "/v1/events/{eventId}"],
  ["get", "/v1/events/{eventId}/report"],
  ["post", "/v1/holds/{holdId}/extend"],
];

/**
 * The published document, made from the route table before the routes were split into files. The file is
 * formatted for reading; its JSON, written as JSON.stringify writes it, is what the server must serve.
 * Change it only together with the API (and docs/api.md), never to make this test pass.
 */
const PUBLISHED = new URL("../../../../test/unit/server/openapi.snapshot.json", import.meta.url);

interface Operation {
  operationId: string;
  parameters: { name: string; in: string }[];
  requestBody?: { content: Record<string, { schema: unknown }> };
  responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
}

describe("OpenAPI document", () => {
  let fx: AppFixture;
  let doc: { openapi: string; info: { title: string }; paths: Record<string, Record<string, Operation>> };
  let served: string;
  before(async () => {
    fx = await startAppFixture();
    const response = await fx.app.inject({ method: "GET", url: "/openapi.json" });
    assert.equal(response.statusCode, 200);
    served = response.body;
    doc = JSON.parse(served);
  });
  after(() => fx.close());

  it("is byte for byte the published document (openapi.snapshot.json)", () => {
    const published = JSON.stringify(JSON.parse(readFileSync(PUBLISHED, "utf8")));
    assert.equal(served, published);
  });

  it("is OpenAPI 3.1 with every contract route, each with a unique operationId", () => {
    assert.equal(doc.openapi, "3.1.0");
    assert.equal(doc.info.title, "boxoffice");
    for (const [method, path] of CONTRACT) assert.ok(doc.paths[path]?.[method], `${method} ${path}`);
    const ids = Object.values(doc.paths).flatMap((p) => Object.values(p).map((o) => o.operationId));
    assert.equal(new Set(ids).size, ids.length);
  });

  it("documents path parameters, bodies, the Idempotency-Key and problem answers", () => {
    for (const [path, operations] of Object.entries(doc.paths)) {
      const names = [...path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]);
      for (const [method, op] of Object.entries(operations)) {
        const inPath = op.parameters.filter((p) => p.in === "path").map((p) => p.name);
        assert.deepEqual(inPath, names, `${method} ${path}`);
        for (const [status, response] of Object.entries(op.responses)) {
          if (Number(status) >= 400)
            assert.ok(response.content?.["application/problem+json"], `${path} ${status}`);
        }
      }
    }
    const order = doc.paths["/v1/events/{eventId}/orders"]?.post;
    assert.ok(order?.requestBody?.content["application/json"]?.schema);
    assert.ok(order?.parameters.some((p) => p.in === "header" && p.name === "Idempotency-Key"));
    assert.ok(order?.responses["409"] && order.responses["503"] && order.responses["201"]);
  });

  it("matches the routes the app really serves", async () => {
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const method of Object.keys(operations)) {
        const url = path.replace(/\{\w+\}/g, "x");
        const response = await fx.app.inject({ method: method.toUpperCase() as "GET", url });
        const code = response.statusCode === 404 ? response.json<{ code: string }>().code : "";
        assert.notEqual(code, "not_found", `${method} ${path}`);
      }
    }
  });
});
