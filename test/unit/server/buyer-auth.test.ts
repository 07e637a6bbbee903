/**
 * --buyer-auth jwt through inject(): tokens an attacker would try (forged, expired, not yet valid, for
 * another audience or issuer, `alg: none`, HS256 signed with the public key) are refused with 401; the
 * login's tokens are accepted with a shared secret, a PEM public key file (RS256) and a JWKS file (ES256);
 * the customer is the token's sub, a body customerId that differs is 403 customer_mismatch, and a buyer's
 * Idempotency-Key is theirs alone. The key files go through the real settings and resolveBuyerAuth.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT, exportJWK, exportSPKI, generateKeyPair } from "jose";
import type { BuyerAuthConfig } from "../../../src/config/buyer-auth.js";
import { resolveBuyerAuth } from "../../../src/config/buyer-auth.js";
import { loadServerConfig } from "../../../src/config/server-config.js";
import type { Order } from "../../../src/domain/sale.js";
import type { AppFixture } from "../../support/app-fixture.js";
import { ADMIN_TOKEN, problemCode, startAppFixture } from "../../support/app-fixture.js";

const HS_SECRET = "login-shared-secret-0123456789-abcdefgh";
const ISSUER = "https://login.example.test";
const AUDIENCE = "boxoffice";
const keyDir = mkdtempSync(join(tmpdir(), "boxoffice-jwt-keys-"));
after(() => rmSync(keyDir, { recursive: true, force: true }));

type Key = Parameters<SignJWT["sign"]>[0];

/** A token as the login would sign it, with `change` applied to its claims and header. */
async function token(
  key: Key,
  alg: string,
  claims: { sub?: string; iss?: string; aud?: string; exp?: number; nbf?: number; kid?: string } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  const jwt = new SignJWT({})
    .setProtectedHeader(claims.kid ? { alg, kid: claims.kid } : { alg })
    .setIssuer(claims.iss ?? ISSUER)
    .setAudience(claims.aud ?? AUDIENCE)
    .setIssuedAt(now)
    .setExpirationTime(claims.exp ?? now + 300);
  if (claims.sub !== "") jwt.setSubject(claims.sub ?? "alice");
  if (claims.nbf !== undefined) jwt.setNotBefore(claims.nbf);
  return jwt.sign(key);
}

function unsigned(payload: object): string {
  const part = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
  return `${part({ alg: "none", typ: "JWT" })}.${part(payload)}.`;
}

async function authFrom(
  flags: Record<string, string>,
  env: Record<string, string> = {},
): Promise<BuyerAuthConfig> {
  const config = loadServerConfig(
    { buyerAuth: "jwt", buyerJwtIssuer: ISSUER, buyerJwtAudience: AUDIENCE, ...flags },
    env,
  );
  return resolveBuyerAuth(config);
}

function describeBuyers(
  name: string,
  setup: () => Promise<{ auth: BuyerAuthConfig; sign: (claims?: object) => Promise<string> }>,
) {
  describe(`--buyer-auth jwt, ${name}`, () => {
    let fx: AppFixture;
    let sign: (claims?: object) => Promise<string>;
    let eventId: string;
    before(async () => {
      const made = await setup();
      sign = made.sign;
      fx = await startAppFixture({ buyerAuth: made.auth });
      eventId = (await fx.createEvent({ name: "Verified", capacity: 100, maxPerCustomer: 4 })).id;
    });
    after(() => fx?.close());

    const buy = (bearer: string | null, body: object, headers: Record<string, string> = {}) =>
      fx.app.inject({
        method: "POST",
        url: `/v1/events/${eventId}/orders`,
        payload: body,
        headers: bearer === null ? headers : { ...headers, authorization: `Bearer ${bearer}` },
      });

    it("takes the customer from the token's sub; a body customerId must be the same", async () => {
      const good = await sign({ sub: "alice" });
      const bought = await buy(good, { quantity: 1 });
      assert.equal(bought.statusCode, 201, bought.body);
      assert.equal(bought.json<Order>().customerId, "alice");
      assert.equal((await buy(good, { customerId: "alice", quantity: 1 })).statusCode, 201);
      const other = await buy(good, { customerId: "mallory", quantity: 1 });
      assert.equal(other.statusCode, 403);
      assert.equal(problemCode(other), "customer_mismatch");
    });

    it("refuses a buyer without a token, and every bad token, with 401 and sells nothing", async () => {
      const anonymous = await buy(null, { customerId: "alice", quantity: 1 });
      assert.equal(anonymous.statusCode, 401);
      assert.equal(problemCode(anonymous), "unauthorized");
      const now = Math.floor(Date.now() / 1000);
      const forged = await token(
        new TextEncoder().encode("an-attacker-secret-0123456789-0123456789"),
        "HS256",
      );
      const bad: [string, string][] = [
        ["forged", forged],
        ["expired", await sign({ exp: now - 120 })],
        ["not yet valid", await sign({ nbf: now + 600 })],
        ["wrong audience", await sign({ aud: "another-app" })],
        ["wrong issuer", await sign({ iss: "https://evil.example.test" })],
        ["no sub", await sign({ sub: "" })],
        ["alg none", unsigned({ sub: "alice", iss: ISSUER, aud: AUDIENCE, exp: now + 300 })],
        ["not a JWT", "abc"],
        ["the admin token with a typo", `${ADMIN_TOKEN}x`],
      ];
      const before = (await fx.store.getEvent(eventId))?.sold;
      for (const [what, bearer] of bad) {
        const answer = await buy(bearer, { customerId: "alice", quantity: 1 });
        assert.equal(answer.statusCode, 401, `${what}: ${answer.body}`);
        assert.equal(problemCode(answer), "unauthorized", what);
      }
      assert.equal((await fx.store.getEvent(eventId))?.sold, before, "nothing sold to a bad token");
    });

    it("accepts a token within the clock tolerance, and the admin token acting for a customerId", async () => {
      const now = Math.floor(Date.now() / 1000);
      assert.equal((await buy(await sign({ sub: "late", exp: now - 5 }), { quantity: 1 })).statusCode, 201);
      const admin = await buy(ADMIN_TOKEN, { customerId: "box-office-walk-in", quantity: 1 });
      assert.equal(admin.statusCode, 201);
      assert.equal(admin.json<Order>().customerId, "box-office-walk-in");
    });

    it("holds maxPerCustomer for one sub whatever customerId the body claims", async () => {
      const scalper = await sign({ sub: "scalper" });
      let bought = 0;
      for (let i = 0; i < 10; i++) {
        const answer = await buy(
          scalper,
          i % 2 === 0 ? { quantity: 1 } : { customerId: `alias-${i}`, quantity: 1 },
        );
        if (answer.statusCode === 201) bought++;
      }
      assert.equal(bought, 4);
    });

    it("opens a buyer's hold and order to that buyer's token only (and the admin's)", async () => {
      const mine = await sign({ sub: "owner" });
      const theirs = await sign({ sub: "intruder" });
      const made = await fx.app.inject({
        method: "POST",
        url: `/v1/events/${eventId}/holds`,
        payload: { quantity: 1 },
        headers: { authorization: `Bearer ${mine}` },
      });
      assert.equal(made.statusCode, 201, made.body);
      const holdId = made.json<{ id: string }>().id;
      for (const [method, url] of [
        ["GET", `/v1/holds/${holdId}`],
        ["POST", `/v1/holds/${holdId}/confirm`],
        ["DELETE", `/v1/holds/${holdId}`],
      ] as const) {
        const answer = await fx.app.inject({ method, url, headers: { authorization: `Bearer ${theirs}` } });
        assert.equal(answer.statusCode, 404, `${method} ${url}`);
        assert.equal(problemCode(answer), "hold_not_found");
      }
      const read = await fx.app.inject({
        method: "GET",
        url: `/v1/holds/${holdId}`,
        headers: { authorization: `Bearer ${mine}` },
      });
      assert.equal(read.json<{ status: string }>().status, "active", "the intruder changed nothing");
      const confirmed = await fx.app.inject({
        method: "POST",
        url: `/v1/holds/${holdId}/confirm`,
        headers: { authorization: `Bearer ${mine}`, "idempotency-key": "mine-1" },
      });
      assert.equal(confirmed.statusCode, 201, confirmed.body);
      const orderId = confirmed.json<Order>().id;
      const intruder = await fx.app.inject({
        method: "POST",
        url: `/v1/orders/${orderId}/cancel`,
        headers: { authorization: `Bearer ${theirs}` },
      });
      assert.equal(intruder.statusCode, 404);
      const byAdmin = await fx.app.inject({
        method: "GET",
        url: `/v1/orders/${orderId}`,
        headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
      });
      assert.equal(byAdmin.json<Order>().status, "confirmed");
    });

    it("scopes an Idempotency-Key to the buyer: another buyer's same key and body is their own order", async () => {
      const key = { "idempotency-key": "checkout-1" };
      const first = await buy(await sign({ sub: "ann" }), { quantity: 2 }, key);
      assert.equal(first.statusCode, 201);
      const replay = await buy(await sign({ sub: "ann" }), { quantity: 2 }, key);
      assert.deepEqual(replay.json(), first.json(), "the owner's retry replays, secret included");
      const thief = await buy(await sign({ sub: "bob" }), { quantity: 2 }, key);
      assert.equal(thief.statusCode, 201);
      const stolen = thief.json<Order & { secret: string }>();
      const mine = first.json<Order & { secret: string }>();
      assert.notEqual(stolen.id, mine.id);
      assert.notEqual(stolen.secret, mine.secret);
      assert.equal(stolen.customerId, "bob");
    });
  });
}

describeBuyers("HS256 shared secret", async () => ({
  auth: await authFrom({}, { BOXOFFICE_BUYER_JWT_SECRET: HS_SECRET }),
  sign: (claims = {}) => token(new TextEncoder().encode(HS_SECRET), "HS256", claims),
}));

describeBuyers("RS256 public key file", async () => {
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const file = join(keyDir, "login-rsa.pem");
  writeFileSync(file, await exportSPKI(publicKey));
  return {
    auth: await authFrom({ buyerJwtPublicKey: file }),
    sign: (claims = {}) => token(privateKey, "RS256", claims),
  };
});

describeBuyers("ES256 JWKS file", async () => {
  const old = await generateKeyPair("ES256");
  const current = await generateKeyPair("ES256");
  const file = join(keyDir, "login.jwks.json");
  const jwks = {
    keys: [
      { ...(await exportJWK(old.publicKey)), kid: "old" },
      { ...(await exportJWK(current.publicKey)), kid: "k2" },
    ],
  };
  writeFileSync(file, JSON.stringify(jwks));
  return {
    auth: await authFrom({ buyerJwtJwks: file }),
    sign: (claims = {}) => token(current.privateKey, "ES256", { kid: "k2", ...claims }),
  };
});

describeBuyers("ES256 public key file", async () => {
  const { publicKey, privateKey } = await generateKeyPair("ES256");
  const file = join(keyDir, "login-ec.pem");
  writeFileSync(file, await exportSPKI(publicKey));
  return {
    auth: await authFrom({ buyerJwtPublicKey: file }),
    sign: (claims = {}) => token(privateKey, "ES256", claims),
  };
});

describeBuyers("RS256 JWKS file", async () => {
  const { publicKey, privateKey } = await generateKeyPair("RS256");
  const file = join(keyDir, "login-rsa.jwks.json");
  writeFileSync(
    file,
    JSON.stringify({ keys: [{ ...(await exportJWK(publicKey)), kid: "r1", alg: "RS256" }] }),
  );
  return {
    auth: await authFrom({ buyerJwtJwks: file }),
    sign: (claims = {}) => token(privateKey, "RS256", { kid: "r1", ...claims }),
  };
});

describe("--buyer-auth jwt: the algorithm is the key's", () => {
  it("refuses HS256 signed with the RS256 public key's PEM (key confusion) and RS256 on an HS256 server", async () => {
    const { publicKey, privateKey } = await generateKeyPair("RS256");
    const pem = await exportSPKI(publicKey);
    const file = join(keyDir, "confusion.pem");
    writeFileSync(file, pem);
    const rsa = await startAppFixture({ buyerAuth: await authFrom({ buyerJwtPublicKey: file }) });
    const hs = await startAppFixture({
      buyerAuth: await authFrom({}, { BOXOFFICE_BUYER_JWT_SECRET: HS_SECRET }),
    });
    try {
      const rsaEvent = await rsa.createEvent({ name: "R", capacity: 5 });
      const confused = await token(new TextEncoder().encode(pem), "HS256");
      const answer = await rsa.app.inject({
        method: "POST",
        url: `/v1/events/${rsaEvent.id}/orders`,
        payload: { quantity: 1 },
        headers: { authorization: `Bearer ${confused}` },
      });
      assert.equal(answer.statusCode, 401);
      const hsEvent = await hs.createEvent({ name: "H", capacity: 5 });
      const rs = await hs.app.inject({
        method: "POST",
        url: `/v1/events/${hsEvent.id}/orders`,
        payload: { quantity: 1 },
        headers: { authorization: `Bearer ${await token(privateKey, "RS256")}` },
      });
      assert.equal(rs.statusCode, 401);
    } finally {
      await rsa.close();
      await hs.close();
    }
  });

  it("refuses settings that make no single verifier, and key files that are not public RSA or P-256 keys", async () => {
    assert.throws(
      () => loadServerConfig({ buyerAuth: "jwt", buyerJwtIssuer: ISSUER, buyerJwtAudience: AUDIENCE }, {}),
      /exactly one key/,
    );
    assert.throws(
      () =>
        loadServerConfig(
          { buyerAuth: "jwt", buyerJwtAudience: AUDIENCE },
          { BOXOFFICE_BUYER_JWT_SECRET: HS_SECRET },
        ),
      /--buyer-jwt-issuer/,
    );
    assert.throws(
      () => loadServerConfig({}, { BOXOFFICE_BUYER_JWT_SECRET: HS_SECRET }),
      /--buyer-auth is none/,
    );
    assert.throws(
      () => loadServerConfig({ buyerAuth: "jwt" }, { BOXOFFICE_BUYER_JWT_SECRET: "short" }),
      /32 to 512/,
    );
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    const privateJwks = join(keyDir, "private.jwks.json");
    writeFileSync(privateJwks, JSON.stringify({ keys: [await exportJWK(privateKey)] }));
    await assert.rejects(authFrom({ buyerJwtJwks: privateJwks }), /private key/);
    const octJwks = join(keyDir, "oct.jwks.json");
    writeFileSync(octJwks, JSON.stringify({ keys: [{ kty: "oct", k: "c2VjcmV0" }] }));
    await assert.rejects(authFrom({ buyerJwtJwks: octJwks }), /only RSA/);
    const notPem = join(keyDir, "not.pem");
    writeFileSync(notPem, "hello");
    await assert.rejects(authFrom({ buyerJwtPublicKey: notPem }), /not a PEM public key/);
    await assert.rejects(authFrom({ buyerJwtPublicKey: join(keyDir, "missing.pem") }), /cannot read/);
  });
});
