/**
 * The waiting room with verified buyers (`--buyer-auth jwt`): a place is keyed by the login's `sub`, so
 * one login holds one place however many queue tokens it collects, while anonymous joins stay apart.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { SignJWT } from "jose";
import { loadServerConfig } from "../../../src/config/server-config.js";
import { resolveBuyerAuth } from "../../../src/config/buyer-auth.js";
import type { AppFixture } from "../../support/app-fixture.js";
import { ADMIN_TOKEN, startAppFixture } from "../../support/app-fixture.js";

const SECRET = "login-shared-secret-0123456789-abcdefgh";
const ISSUER = "https://login.example.test";
const AUDIENCE = "boxoffice";

async function bearer(sub: string): Promise<string> {
  const jwt = await new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject(sub)
    .setExpirationTime(Math.floor(Date.now() / 1000) + 300)
    .sign(new TextEncoder().encode(SECRET));
  return `Bearer ${jwt}`;
}

describe("waiting room, --buyer-auth jwt", () => {
  let fx: AppFixture;
  let eventId: string;
  before(async () => {
    const config = loadServerConfig(
      { buyerAuth: "jwt", buyerJwtIssuer: ISSUER, buyerJwtAudience: AUDIENCE },
      { BOXOFFICE_BUYER_JWT_SECRET: SECRET },
    );
    fx = await startAppFixture({ buyerAuth: await resolveBuyerAuth(config) });
    eventId = (await fx.createEvent({ name: "Behind a room", capacity: 100 })).id;
    const room = await fx.app.inject({
      method: "PUT",
      url: `/v1/events/${eventId}/waiting-room`,
      headers: { authorization: `Bearer ${ADMIN_TOKEN}`, "content-type": "application/json" },
      payload: { admissionRatePerSecond: 100 },
    });
    assert.equal(room.statusCode, 201, room.body);
  });
  after(() => fx?.close());

  const join = (authorization: string | null) =>
    fx.app.inject({
      method: "POST",
      url: `/v1/events/${eventId}/queue`,
      headers: authorization === null ? {} : { authorization },
    });

  it("gives one login one place, whatever queue token it holds; anonymous joins get places of their own", async () => {
    const alice = await bearer("alice");
    const first = await join(alice);
    assert.equal(first.statusCode, 201, first.body);
    const again = await join(alice);
    assert.equal(again.statusCode, 200, "the same sub, without its queue token: the same place");
    assert.equal((await join(await bearer("bob"))).statusCode, 201, "another login: a place of its own");
    assert.equal((await join(null)).statusCode, 201);
    assert.equal((await join(null)).statusCode, 201, "anonymous: every join without a token is new");
    assert.equal((await join("Bearer forged.token.here")).statusCode, 401);
  });
});
