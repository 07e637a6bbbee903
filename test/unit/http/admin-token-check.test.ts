/**
 * The one admin token check (instance, balancer, control server): exactly `Bearer <token>` passes.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { AdminTokenCheck } from "../../../src/http/admin-token-check.js";

const TOKEN = "s3cret-token-0123456789";

describe("admin token check", () => {
  const check = new AdminTokenCheck(TOKEN);

  it("allows exactly Bearer <token>", () => {
    assert.equal(check.allows(`Bearer ${TOKEN}`), true);
  });

  it("refuses a wrong token of any length, and any other form of the header", () => {
    const refused = [
      undefined,
      "",
      "Bearer ",
      TOKEN,
      `bearer ${TOKEN}`,
      `Basic ${TOKEN}`,
      `Bearer  ${TOKEN}`,
      `Bearer ${TOKEN} `,
      `Bearer ${TOKEN}x`,
      `Bearer ${TOKEN.slice(0, -1)}`,
      `Bearer ${TOKEN.slice(0, -1)}X`, // same length, last character wrong
      `Bearer ${"x".repeat(10_000)}`,
    ];
    for (const header of refused) assert.equal(check.allows(header), false, JSON.stringify(header));
  });

  it("lets nobody in when no token is set, whatever is sent", () => {
    for (const unset of [new AdminTokenCheck(undefined), new AdminTokenCheck("")]) {
      assert.equal(unset.allows("Bearer "), false);
      assert.equal(unset.allows("Bearer undefined"), false);
      assert.equal(unset.allows(`Bearer ${TOKEN}`), false);
    }
  });
});
