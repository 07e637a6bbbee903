/**
 * The dashboard's page as an instance serves it: its files and nothing else, with a strict
 * Content-Security-Policy (no inline script, no framing), nosniff, and no data in the page itself;
 * every other name under /dashboard/assets/ is a 404 problem, traversal included.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { startAppFixture, type AppFixture } from "../../support/app-fixture.js";

describe("GET /dashboard", () => {
  let fixture: AppFixture;
  before(async () => {
    fixture = await startAppFixture();
  });
  after(() => fixture.close());

  it("serves the page with a strict policy, and no figure or token in it", async () => {
    await fixture.createEvent({ name: "Secret night", capacity: 10 });
    const page = await fixture.app.inject({ url: "/dashboard" });
    assert.equal(page.statusCode, 200);
    assert.match(String(page.headers["content-type"]), /^text\/html/);
    const csp = String(page.headers["content-security-policy"]);
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'self'(;|$)/);
    assert.match(csp, /frame-ancestors 'none'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
    assert.equal(page.headers["x-content-type-options"], "nosniff");
    assert.equal(page.headers["cache-control"], "no-store");
    // Scripts only from files: no inline script, no inline handler, no inline style.
    assert.doesNotMatch(page.body, /<script(?![^>]*\bsrc=)[^>]*>/);
    assert.doesNotMatch(page.body, /\son[a-z]+=/i);
    assert.doesNotMatch(page.body, /style=/);
    assert.doesNotMatch(page.body, /Secret night/);
  });

  it("serves its three files with their types, and nothing else", async () => {
    for (const [name, type] of [
      ["dashboard.js", /^text\/javascript/],
      ["chart.js", /^text\/javascript/],
      ["dashboard.css", /^text\/css/],
    ] as const) {
      const answer = await fixture.app.inject({ url: `/dashboard/assets/${name}` });
      assert.equal(answer.statusCode, 200, name);
      assert.match(String(answer.headers["content-type"]), type);
      assert.equal(answer.headers["x-content-type-options"], "nosniff");
      assert.ok(answer.body.length > 100, name);
    }
    for (const path of [
      "/dashboard/assets/index.html",
      "/dashboard/assets/constructor",
      "/dashboard/assets/__proto__",
      "/dashboard/assets/..%2Fdashboard%2Fdashboard.js",
      "/dashboard/assets/..%2F..%2F..%2Fpackage.json",
      "/dashboard/assets/dashboard.js%00",
      "/dashboard/assets/",
    ]) {
      const answer = await fixture.app.inject({ url: path });
      assert.equal(answer.statusCode, 404, path);
      assert.match(String(answer.headers["content-type"]), /^application\/problem\+json/, path);
    }
  });

  it("writes what the API says as text, never as markup", async () => {
    for (const name of ["dashboard.js", "chart.js"]) {
      const script = (await fixture.app.inject({ url: `/dashboard/assets/${name}` })).body;
      assert.doesNotMatch(script, /innerHTML|outerHTML|insertAdjacentHTML|document\.write|eval\(/, name);
    }
  });
});
