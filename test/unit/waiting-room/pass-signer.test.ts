/** The waiting room's signed passes: what verifies, and every way a forged or altered one is refused. */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import { deriveKey } from "../../../src/config/signing-secret.js";
import { MAX_TOKEN_LENGTH, PassSigner } from "../../../src/waiting-room/pass-signer.js";

const signer = new PassSigner(deriveKey("a-signing-secret-of-at-least-32-characters", "waiting-room"));
const other = new PassSigner(deriveKey("another-signing-secret-of-32-characters!", "waiting-room"));
const access = {
  eventId: "evt_01M8PK6XKK14W2B442VDS0VDFJ",
  identity: "buyer-1",
  generation: "g1",
  place: 7,
  admitAtMs: 1_000,
  expiresAtMs: 2_000,
};
const queue = { eventId: access.eventId, identity: "buyer-1", issuedAtMs: 5 };

describe("PassSigner", () => {
  it("reads back what it signed", () => {
    assert.deepEqual(signer.readAccess(signer.signAccess(access)), access);
    assert.deepEqual(signer.readQueue(signer.signQueue(queue)), queue);
  });

  it("refuses a pass signed with another secret", () => {
    assert.equal(signer.readAccess(other.signAccess(access)), null);
    assert.equal(signer.readQueue(other.signQueue(queue)), null);
  });

  it("refuses a queue token as an access token and the other way round", () => {
    const asAccess = signer.signQueue(queue).replace(/^q1\./, "a1.");
    assert.equal(signer.readAccess(asAccess), null);
    assert.equal(signer.readQueue(signer.signAccess(access).replace(/^a1\./, "q1.")), null);
  });

  it("refuses an altered payload (another buyer, a later expiry) with the original MAC", () => {
    const token = signer.signAccess(access);
    const [prefix, , mac] = token.split(".");
    for (const change of [{ identity: "buyer-2" }, { expiresAtMs: 9e15 }, { eventId: "evt_other" }]) {
      const body = Buffer.from(
        JSON.stringify({ e: access.eventId, s: access.identity, g: "g1", p: 7, n: 1000, x: 2000, ...change }),
      ).toString("base64url");
      assert.equal(signer.readAccess(`${prefix}.${body}.${mac}`), null);
    }
  });

  it("refuses malformed, truncated, oversized and empty tokens", () => {
    const token = signer.signAccess(access);
    for (const bad of [
      undefined,
      "",
      "a1.",
      "a1..",
      token.slice(0, -1),
      `${token}A`,
      token.replace(/\.[^.]*$/, ".AAAA"),
      `${token.slice(0, 3)}${"A".repeat(MAX_TOKEN_LENGTH)}`,
      "a1.bm90IGpzb24.x",
      "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.",
    ]) {
      assert.equal(signer.readAccess(bad), null, String(bad));
    }
  });

  it("refuses a validly signed payload of the wrong shape", () => {
    // Sign a body without the fields an access pass needs, with the real key: still refused.
    const queueAsAccessShape = signer.signQueue(queue);
    assert.equal(signer.readAccess(queueAsAccessShape), null);
  });
});
