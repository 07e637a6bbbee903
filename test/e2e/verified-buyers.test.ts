/**
 * --buyer-auth jwt across three real `boxoffice server` processes, on SQLite in both layouts (file lock)
 * and on PostgreSQL (no lock): one buyer (one `sub`) racing on every instance at once, half the requests
 * claiming other customer ids in the body, gets exactly maxPerCustomer tickets, and the claims are refused
 * 403 customer_mismatch; an order made on one instance is read on another with its secret or its owner's
 * token, and with nothing else (another buyer's token gets 404); a replay of one buyer's key by another
 * on another instance is the other's own order.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SignJWT } from "jose";
import type { Event } from "../../src/domain/event.js";
import type { Order } from "../../src/domain/sale.js";
import { HttpClient } from "../support/http-client.js";
import { dropSchema, freshSchemaName } from "../support/postgres-test-store.js";
import { ServerProcess, stopAll } from "../support/server-process.js";
import { postgresSkip, TEST_POSTGRES_URL } from "../support/services.js";

const INSTANCES = 3;
const JWT_SECRET = "e2e-login-shared-secret-0123456789-abcdef";
const ISSUER = "https://login.e2e.test";
const AUDIENCE = "boxoffice-e2e";
const MAX_PER_CUSTOMER = 6;
const ATTEMPTS = 90;

async function tokenFor(sub: string): Promise<string> {
  return new SignJWT({})
    .setProtectedHeader({ alg: "HS256" })
    .setSubject(sub)
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setIssuedAt()
    .setExpirationTime("10m")
    .sign(new TextEncoder().encode(JWT_SECRET));
}

type Backend = { name: string; args: () => string[]; skip?: string; cleanup?: () => Promise<void> };
const pgSkip = await postgresSkip();
const pgSchema = freshSchemaName("buyers");
const backends: Backend[] = [
  { name: "sqlite single", args: () => ["--layout", "single"] },
  { name: "sqlite per-event", args: () => ["--layout", "per-event"] },
  {
    name: "postgres",
    args: () => [
      "--store",
      `${TEST_POSTGRES_URL}?schema=${pgSchema}`,
      "--lock",
      "none",
      "--pg-pool-size",
      "4",
    ],
    ...(pgSkip === undefined ? {} : { skip: pgSkip }),
    cleanup: () => dropSchema(TEST_POSTGRES_URL, pgSchema),
  },
];

for (const backend of backends) {
  describe(`verified buyers on ${INSTANCES} processes (${backend.name})`, { skip: backend.skip }, () => {
    const dir = mkdtempSync(join(tmpdir(), "boxoffice-e2e-buyers-"));
    const http = new HttpClient(64);
    let servers: ServerProcess[] = [];
    let event: Event;
    const url = (i: number) => (servers[i % INSTANCES] as ServerProcess).url;

    before(async () => {
      servers = await Promise.all(
        Array.from({ length: INSTANCES }, (_, i) =>
          ServerProcess.start({
            dataDir: dir,
            instanceId: `buyers-${i}`,
            args: [
              "--buyer-auth",
              "jwt",
              "--buyer-jwt-issuer",
              ISSUER,
              "--buyer-jwt-audience",
              AUDIENCE,
              ...backend.args(),
            ],
            env: { BOXOFFICE_BUYER_JWT_SECRET: JWT_SECRET },
          }),
        ),
      );
      const created = await http.call<Event>(url(0), "/v1/events", {
        admin: true,
        body: { name: "Verified", capacity: 1000, maxPerOrder: 4, maxPerCustomer: MAX_PER_CUSTOMER },
      });
      assert.equal(created.status, 201, created.text);
      event = created.body;
    });
    after(async () => {
      await stopAll();
      await http.close();
      rmSync(dir, { recursive: true, force: true });
      await backend.cleanup?.();
    });

    it("holds maxPerCustomer for one sub across instances, whatever customer ids the body claims", async () => {
      const scalper = await tokenFor("scalper-1");
      const answers = await Promise.all(
        Array.from({ length: ATTEMPTS }, (_, i) =>
          http.call<Order & { code?: string }>(url(i), `/v1/events/${event.id}/orders`, {
            body: i % 2 === 0 ? { quantity: 1 + (i % 3) } : { customerId: `alias-${i}`, quantity: 1 },
            headers: { authorization: `Bearer ${scalper}` },
          }),
        ),
      );
      let bought = 0;
      answers.forEach((answer, i) => {
        if (i % 2 === 1) {
          assert.equal(answer.status, 403, answer.text);
          assert.equal(answer.body.code, "customer_mismatch");
        } else if (answer.status === 201) {
          assert.equal(answer.body.customerId, "scalper-1");
          bought += answer.body.quantity;
        } else {
          assert.equal(answer.status, 409, answer.text);
          assert.equal(answer.body.code, "customer_limit_reached");
        }
      });
      assert.ok(bought <= MAX_PER_CUSTOMER, `sold ${bought} to one sub`);
      // Every instance answered, and the event sold what the one buyer got, nothing for the aliases.
      assert.equal(new Set(answers.map((a) => a.headers["x-served-by"])).size, INSTANCES);
      const seen = await http.call<Event>(url(1), `/v1/events/${event.id}`);
      assert.equal(seen.body.sold, bought);
      // With tickets left under the limit, a 1-ticket order still fits: the limit, not the race, stopped them.
      const list = await http.call<{ orders: Order[] }>(
        url(2),
        `/v1/events/${event.id}/orders?customerId=scalper-1`,
        {
          admin: true,
        },
      );
      assert.equal(
        list.body.orders.reduce((n, o) => n + o.quantity, 0),
        bought,
      );
      assert.ok(bought > MAX_PER_CUSTOMER - 3, `the limit was reached, not missed by far (${bought})`);
    });

    it("reads an order on another instance only with its secret, its owner's token or the admin token", async () => {
      const owner = await tokenFor("reader-1");
      const made = await http.call<Order & { secret: string }>(url(0), `/v1/events/${event.id}/orders`, {
        body: { quantity: 1 },
        headers: { authorization: `Bearer ${owner}` },
      });
      assert.equal(made.status, 201, made.text);
      const { secret, ...order } = made.body;
      const path = `/v1/orders/${order.id}`;
      assert.deepEqual(
        (await http.call(url(1), path, { headers: { "x-order-secret": secret } })).body,
        order,
      );
      assert.deepEqual(
        (await http.call(url(2), path, { headers: { authorization: `Bearer ${owner}` } })).body,
        order,
      );
      assert.deepEqual((await http.call(url(1), path, { admin: true })).body, order);
      const stranger = await tokenFor("reader-2");
      assert.equal(
        (await http.call(url(2), path, { headers: { authorization: `Bearer ${stranger}` } })).status,
        404,
      );
      const cancel = await http.call(url(1), `${path}/cancel`, {
        method: "POST",
        headers: { authorization: `Bearer ${stranger}` },
      });
      assert.equal(cancel.status, 404);
      assert.equal((await http.call(url(0), path)).status, 404);
      assert.equal((await http.call<Order>(url(0), path, { admin: true })).body.status, "confirmed");
    });

    it("never replays one buyer's Idempotency-Key answer to another, on any instance", async () => {
      const key = { "idempotency-key": "same-key-everywhere" };
      const first = await http.call<Order & { secret: string }>(url(0), `/v1/events/${event.id}/orders`, {
        body: { quantity: 2 },
        headers: { ...key, authorization: `Bearer ${await tokenFor("ann")}` },
      });
      assert.equal(first.status, 201);
      for (let i = 0; i < INSTANCES; i++) {
        const other = await http.call<Order & { secret: string }>(url(i), `/v1/events/${event.id}/orders`, {
          body: { quantity: 2 },
          headers: { ...key, authorization: `Bearer ${await tokenFor(`bob-${i}`)}` },
        });
        assert.equal(other.status, 201);
        assert.notEqual(other.body.id, first.body.id);
        assert.notEqual(other.body.secret, first.body.secret);
        assert.equal(other.body.customerId, `bob-${i}`);
      }
      const replay = await http.call<Order & { secret: string }>(url(2), `/v1/events/${event.id}/orders`, {
        body: { quantity: 2 },
        headers: { ...key, authorization: `Bearer ${await tokenFor("ann")}` },
      });
      assert.deepEqual(replay.body, first.body);
    });
  });
}
