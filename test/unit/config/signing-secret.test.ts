import assert from "node:assert/strict";
import { mkdtemp, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { describe, it } from "node:test";
import { deriveKey, resolveSigningSecret } from "../../../src/config/signing-secret.js";

describe("signing secret", () => {
  it("is the variable when set, else one generated value every later call reads back, private", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), "boxoffice-signing-"));
    try {
      assert.equal(await resolveSigningSecret("x".repeat(40), dir), "x".repeat(40));
      const first = await resolveSigningSecret(null, dir);
      assert.match(first, /^[A-Za-z0-9_-]{43}$/);
      assert.equal(await resolveSigningSecret(null, dir), first);
      assert.equal((await stat(path.join(dir, "signing-secret"))).mode & 0o777, 0o600);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("derives a different key for each purpose and for each secret", () => {
    const a = deriveKey("secret-one-0123456789-0123456789", "order-access");
    assert.equal(a.length, 32);
    assert.notDeepEqual(a, deriveKey("secret-one-0123456789-0123456789", "waiting-room"));
    assert.notDeepEqual(a, deriveKey("secret-two-0123456789-0123456789", "order-access"));
    assert.deepEqual(a, deriveKey("secret-one-0123456789-0123456789", "order-access"));
  });
});
