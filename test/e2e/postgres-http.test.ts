/**
 * `boxoffice server --store postgres://…` end to end: four real server processes share one PostgreSQL
 * schema, with no lock, and take 1,000 concurrent purchases (general and seated), straight and through
 * PgBouncer in transaction mode. Then a crash of PostgreSQL in the middle of a burst of HTTP purchases:
 * 503 with Retry-After while it is down, no confirmed order lost, and sales come back by themselves.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Event } from "../../src/domain/event.js";
import type { Order } from "../../src/domain/sale.js";
import { HttpClient, type HttpAnswer } from "../support/http-client.js";
import {
  freePortIn,
  serversSkipReason,
  startPgBouncer,
  startThrowawayPostgres,
  type PgBouncer,
  type ThrowawayPostgres,
} from "../support/postgres-servers.js";
import { dropSchema, freshSchemaName, lockEventRow } from "../support/postgres-test-store.js";
import { ServerProcess, stopAll } from "../support/server-process.js";
import { postgresSkip, TEST_POSTGRES_URL } from "../support/services.js";

const INSTANCES = 4;
const PURCHASES = 1000;
const skip = (await postgresSkip()) ?? serversSkipReason();
const dataDirs: string[] = [];
after(() => dataDirs.forEach((dir) => rmSync(dir, { recursive: true, force: true })));

/** Starts `count` server processes on one PostgreSQL store URL, each with a small pool. */
async function startServers(storeUrl: string, name: string, count: number): Promise<ServerProcess[]> {
  const dataDir = mkdtempSync(join(tmpdir(), `boxoffice-e2e-pg-${name}-`));
  dataDirs.push(dataDir);
  return Promise.all(
    Array.from({ length: count }, (_, i) =>
      ServerProcess.start({
        dataDir,
        instanceId: `${name}-${i}`,
        args: ["--store", storeUrl, "--pg-pool-size", "4", "--pg-statement-timeout-ms", "2000"],
      }),
    ),
  );
}

/**
 * A keyed purchase, sent again with the same key and body after a 503 (honouring Retry-After), as a client
 * would, until it has a definite answer: 1,000 buyers at once may meet a 503 (a full queue, a lock wait),
 * which is allowed; what is checked is the answer they end with.
 */
async function buyUntilAnswered(
  http: HttpClient,
  baseUrl: string,
  eventId: string,
  body: Record<string, unknown>,
  key: string,
): Promise<HttpAnswer<Order & { code?: string }>> {
  for (let attempt = 0; ; attempt++) {
    const answer = await http.call<Order & { code?: string }>(baseUrl, `/v1/events/${eventId}/orders`, {
      body,
      headers: { "idempotency-key": key },
    });
    if (answer.status !== 503 || attempt >= 50) return answer;
    assert.match(String(answer.headers["retry-after"]), /^\d+$/, "a 503 carries Retry-After");
    await new Promise((resolve) => setTimeout(resolve, Number(answer.headers["retry-after"]) * 1000));
  }
}

/** 1,000 buyers of 1-4 tickets against 500, spread over the instances: exactly 500 sold. */
async function oversellCheck(http: HttpClient, servers: ServerProcess[]): Promise<void> {
  const url = (i: number) => (servers[i % servers.length] as ServerProcess).url;
  const created = await http.call<Event>(url(0), "/v1/events", {
    admin: true,
    body: { name: "Hot night", capacity: 500, maxPerOrder: 4, maxPerCustomer: 4 },
  });
  assert.equal(created.status, 201, created.text);
  const event = created.body;
  const quantities = Array.from({ length: PURCHASES }, (_, i) => 1 + ((i * 7) % 4));
  const answers = await Promise.all(
    quantities.map((quantity, i) =>
      buyUntilAnswered(http, url(i), event.id, { customerId: `buyer-${i}`, quantity }, `buy-${i}`),
    ),
  );
  const sold = answers.filter((a) => a.status === 201);
  for (const answer of answers.filter((a) => a.status !== 201)) {
    assert.equal(answer.status, 409, answer.text);
    assert.equal(answer.body.code, "sold_out");
  }
  assert.equal(new Set(answers.map((a) => a.headers["x-served-by"])).size, servers.length);
  assert.equal(
    sold.reduce((sum, a) => sum + a.body.quantity, 0),
    500,
  );
  for (const answer of sold.slice(0, 50)) {
    const { secret, ...created } = answer.body as Order & { secret: string };
    const order = await http.call<Order>(url(1), `/v1/orders/${created.id}`, {
      headers: { "x-order-secret": secret },
    });
    assert.deepEqual(order.body, created);
  }
  for (let i = 0; i < servers.length; i++) {
    const seen = await http.call<Event>(url(i), `/v1/events/${event.id}`);
    assert.deepEqual([seen.body.sold, seen.body.held, seen.body.available], [500, 0, 0]);
  }
}

describe("boxoffice server on PostgreSQL: 4 processes, no lock", { skip, timeout: 120_000 }, () => {
  const schema = freshSchemaName("http");
  const http = new HttpClient(64);
  let servers: ServerProcess[] = [];
  before(async () => {
    servers = await startServers(`${TEST_POSTGRES_URL}?schema=${schema}`, "pg", INSTANCES);
  });
  after(async () => {
    await stopAll();
    await http.close();
    await dropSchema(TEST_POSTGRES_URL, schema);
  });

  it("sells exactly the capacity of a general event to 1,000 concurrent buyers", async () => {
    await oversellCheck(http, servers);
  });

  it("never puts a seat in two orders when 1,000 buyers ask for overlapping seats", async () => {
    const url = (i: number) => (servers[i % INSTANCES] as ServerProcess).url;
    const created = await http.call<Event>(url(1), "/v1/events", {
      admin: true,
      body: { name: "Seated night", seating: { sections: [{ name: "A", rows: 10, seatsPerRow: 20 }] } },
    });
    assert.equal(created.status, 201, created.text);
    const requests = Array.from({ length: PURCHASES }, (_, i) => {
      const count = 1 + (i % 4);
      const row = 1 + ((i * 3) % 10);
      const first = 1 + ((i * 7) % (20 - count + 1));
      return Array.from({ length: count }, (_, k) => `A-${row}-${first + k}`);
    });
    const answers = await Promise.all(
      requests.map((seats, i) =>
        buyUntilAnswered(http, url(i), created.body.id, { customerId: `fan-${i}`, seats }, `fan-${i}`),
      ),
    );
    for (const answer of answers.filter((a) => a.status !== 201)) {
      assert.equal(answer.status, 409, answer.text);
      assert.ok(
        ["seats_unavailable", "customer_limit_reached"].includes(answer.body.code ?? ""),
        answer.text,
      );
    }
    const soldSeats = answers.filter((a) => a.status === 201).flatMap((a) => a.body.seats ?? []);
    assert.equal(new Set(soldSeats).size, soldSeats.length, "no seat in two orders");
    const seen = await http.call<Event>(url(2), `/v1/events/${created.body.id}`);
    assert.equal(seen.body.sold, soldSeats.length);
  });

  it("answers 503 with Retry-After when the event's row is stuck, after the statement timeout", async () => {
    const url = (servers[0] as ServerProcess).url;
    const created = await http.call<Event>(url, "/v1/events", {
      admin: true,
      body: { name: "Stuck", capacity: 5 },
    });
    assert.equal(created.status, 201, created.text);
    const holder = await lockEventRow(TEST_POSTGRES_URL, schema, created.body.id);
    let answer: HttpAnswer<{ code?: string }>;
    try {
      answer = await http.call(url, `/v1/events/${created.body.id}/orders`, {
        body: { customerId: "c", quantity: 1 },
      });
    } finally {
      await holder.release();
    }
    assert.equal(answer.status, 503, answer.text);
    assert.equal(answer.body.code, "unavailable");
    assert.match(String(answer.headers["retry-after"]), /^\d+$/);
    const after = await http.call<Event>(url, `/v1/events/${created.body.id}`);
    assert.equal(after.body.sold, 0, "a 503 changed nothing");
    const sold = await http.call(url, `/v1/events/${created.body.id}/orders`, {
      body: { customerId: "c", quantity: 1 },
    });
    assert.equal(sold.status, 201, "sells again once the row is free");
  });
});

describe(
  "boxoffice server on PostgreSQL through PgBouncer (transaction mode)",
  { skip, timeout: 120_000 },
  () => {
    const schema = freshSchemaName("http_bouncer");
    const http = new HttpClient(64);
    let bouncer: PgBouncer | undefined;
    let servers: ServerProcess[] = [];
    before(async () => {
      const target = { port: Number(new URL(TEST_POSTGRES_URL).port || 5432), database: "test" };
      bouncer = await startPgBouncer(await freePortIn(16432, 16439), target, 6);
      servers = await startServers(`${bouncer.url}?schema=${schema}`, "bounced", INSTANCES);
    });
    after(async () => {
      await stopAll();
      await http.close();
      await bouncer?.stop();
      await dropSchema(TEST_POSTGRES_URL, schema);
    });

    it("sells exactly the capacity of a general event to 1,000 concurrent buyers", async () => {
      await oversellCheck(http, servers);
    });
  },
);

describe("boxoffice server while PostgreSQL crashes and comes back", { skip, timeout: 120_000 }, () => {
  const http = new HttpClient(16);
  let server: ThrowawayPostgres | undefined;
  let servers: ServerProcess[] = [];
  before(async () => {
    server = await startThrowawayPostgres(await freePortIn(19400, 19499));
    servers = await startServers(`${server.url}?schema=crash`, "crash", 2);
  });
  after(async () => {
    await stopAll();
    await http.close();
    await server?.stop();
  });

  it("answers 503 with Retry-After while down, loses no confirmed order, and sells again by itself", async () => {
    assert.ok(server);
    const pgServer = server;
    const url = (i: number) => (servers[i % servers.length] as ServerProcess).url;
    const created = await http.call<Event>(url(0), "/v1/events", {
      admin: true,
      body: { name: "Crash night", capacity: 1_000_000, maxPerCustomer: 8 },
    });
    assert.equal(created.status, 201, created.text);
    const eventId = created.body.id;

    const confirmed: Order[] = [];
    const unavailable: HttpAnswer[] = [];
    const unexpected: string[] = [];
    let phase: "before" | "down" | "after" = "before";
    let soldAfter = 0;
    let stop = false;
    let n = 0;
    const deadline = Date.now() + 60_000;
    async function buyer(): Promise<void> {
      while (!stop && Date.now() < deadline) {
        const i = n++;
        const answer = await http.call<Order & { code?: string }>(url(i), `/v1/events/${eventId}/orders`, {
          body: { customerId: `c${i}`, quantity: 1 },
          headers: { "idempotency-key": `crash-${i}` },
        });
        if (answer.status === 201) {
          confirmed.push(answer.body);
          if (phase === "after") soldAfter++;
        } else if (answer.status === 503) {
          unavailable.push(answer);
          await new Promise((resolve) => setTimeout(resolve, 20));
        } else unexpected.push(`${answer.status} ${answer.text}`);
      }
    }
    async function until(condition: () => boolean, what: string): Promise<void> {
      while (!condition()) {
        if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    }
    const buyers = Promise.all(Array.from({ length: 8 }, buyer));
    try {
      await until(() => confirmed.length >= 100, "100 sales before the crash");
      phase = "down";
      await pgServer.stopServer("immediate");
      await until(() => unavailable.length > 0, "a 503 while PostgreSQL is down");
      await new Promise((resolve) => setTimeout(resolve, 500));
      await pgServer.startServer();
      phase = "after";
      await until(() => soldAfter >= 100, "100 sales after the restart");
    } finally {
      stop = true;
      await buyers;
    }
    assert.deepEqual(unexpected, []);
    for (const answer of unavailable) {
      assert.match(String(answer.headers["retry-after"]), /^\d+$/, "a 503 carries Retry-After");
      assert.equal((answer.body as { code?: string }).code, "unavailable");
    }
    for (const order of confirmed) {
      const stored = await http.call<Order>(url(1), `/v1/orders/${order.id}`, { admin: true });
      assert.equal(stored.status, 200, `order ${order.id} was confirmed, then lost`);
      assert.equal(stored.body.status, "confirmed");
    }
    const event = await http.call<Event>(url(0), `/v1/events/${eventId}`);
    assert.ok(event.body.sold >= confirmed.length);
  });
});
