/**
 * The signer against the Standard Webhooks specification's published example (the `sign` vector of its
 * reference libraries), against an independent HMAC computed here with node:crypto, and as a receiver
 * would check it: forged, tampered, replayed-late and malformed headers are refused.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import {
  newEndpointSecret,
  signWebhook,
  verifyWebhook,
  webhookHeaders,
} from "../../../src/webhooks/webhook-signer.js";

// The example of the Standard Webhooks reference libraries (libraries/*/…test…: "sign function works").
const SPEC = {
  secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
  id: "msg_p5jXN8AQM9LWM0D4loKWxJek",
  timestamp: 1614265330,
  body: '{"test": 2432232314}',
  signature: "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
};

describe("webhook signer", () => {
  it("signs the specification's example exactly", () => {
    assert.equal(signWebhook(SPEC.secret, SPEC.id, SPEC.timestamp, SPEC.body), SPEC.signature);
    assert.deepEqual(webhookHeaders(SPEC.secret, SPEC.id, SPEC.timestamp, SPEC.body), {
      "webhook-id": SPEC.id,
      "webhook-timestamp": String(SPEC.timestamp),
      "webhook-signature": SPEC.signature,
    });
  });

  it("agrees with an HMAC-SHA256 computed independently over id.timestamp.body", () => {
    const secret = newEndpointSecret();
    const body = JSON.stringify({ id: "msg_1", type: "order.created", data: { ü: "ünïcode ✓" } });
    const key = Buffer.from(secret.slice("whsec_".length), "base64");
    const expected = createHmac("sha256", key).update(`msg_1.1700000000.${body}`, "utf8").digest("base64");
    assert.equal(signWebhook(secret, "msg_1", 1700000000, body), `v1,${expected}`);
  });

  it("makes secrets whsec_ + base64 of 24 random bytes, never the same twice", () => {
    const secrets = new Set(Array.from({ length: 100 }, () => newEndpointSecret()));
    assert.equal(secrets.size, 100);
    for (const secret of secrets) {
      assert.match(secret, /^whsec_[A-Za-z0-9+/]{32}$/);
      assert.equal(Buffer.from(secret.slice(6), "base64").length, 24);
    }
  });

  it("a receiver accepts the real signature and refuses forged, tampered, late and malformed ones", () => {
    const secret = newEndpointSecret();
    const body = '{"id":"msg_2","type":"hold.created"}';
    const now = 1_800_000_000;
    const headers = webhookHeaders(secret, "msg_2", now, body);
    const check = (h: { id: string; timestamp: string; signature: string }, b = body, at = now) =>
      verifyWebhook(secret, h, b, at);
    const good = {
      id: "msg_2",
      timestamp: headers["webhook-timestamp"],
      signature: headers["webhook-signature"],
    };
    assert.equal(check(good), true);
    assert.equal(check({ ...good, signature: `v1,bogus ${good.signature}` }), true, "one of several");
    assert.equal(check(good, body.replace("hold", "order")), false, "tampered body");
    assert.equal(check({ ...good, id: "msg_3" }), false, "another message id");
    assert.equal(check(good, body, now + 301), false, "replayed after the tolerance");
    assert.equal(check({ ...good, timestamp: "1e9" }), false, "malformed timestamp");
    assert.equal(check({ ...good, signature: good.signature.replace("v1,", "v2,") }), false);
    const forged = webhookHeaders(newEndpointSecret(), "msg_2", now, body)["webhook-signature"];
    assert.equal(check({ ...good, signature: forged }), false, "signed with another secret");
  });

  it("refuses a secret without a key", () => {
    assert.throws(() => signWebhook("whsec_", "msg_1", 1, "{}"), TypeError);
  });
});
