/** Endpoint URLs: http and https only, absolute, with a host, no credentials, no fragment, bounded. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { checkEndpointUrl } from "../../../src/webhooks/endpoint-url.js";

describe("webhook endpoint URL", () => {
  it("takes http and https URLs and gives their normal form", () => {
    assert.deepEqual(checkEndpointUrl("https://hooks.example.com/boxoffice?x=1"), {
      ok: true,
      url: "https://hooks.example.com/boxoffice?x=1",
    });
    assert.deepEqual(checkEndpointUrl("http://127.0.0.1:8081"), { ok: true, url: "http://127.0.0.1:8081/" });
    assert.equal(checkEndpointUrl("HTTPS://EXAMPLE.com/a").ok, true);
  });

  for (const [text, why] of [
    ["ftp://example.com/", "another scheme"],
    ["file:///etc/passwd", "a file"],
    ["javascript:alert(1)", "a script"],
    ["gopher://127.0.0.1:6379/_FLUSHALL", "gopher to Redis"],
    ["/relative/path", "relative"],
    ["example.com", "no scheme"],
    ["http://", "no host"],
    ["https://user:pass@example.com/", "credentials"],
    ["https://token@example.com/", "a user name"],
    ["https://example.com/#frag", "a fragment"],
    [`https://example.com/${"a".repeat(2000)}`, "too long"],
    ["", "empty"],
  ] as const) {
    it(`refuses ${why}: ${text.slice(0, 40)}`, () => {
      const checked = checkEndpointUrl(text);
      assert.equal(checked.ok, false);
      if (!checked.ok) assert.ok(checked.reason.length > 0);
    });
  }
});
