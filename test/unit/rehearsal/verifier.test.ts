/**
 * The verifier against a hand-made API (a small node:http server on port 0 serving a state the test
 * writes): it passes a consistent sale, settles a key in doubt by replaying it through a 503 with
 * Retry-After, and fails each check on the inconsistency that check is for.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import type { ClientRecord } from "../../../src/rehearsal/client-log.js";
import { verify } from "../../../src/rehearsal/verifier.js";

const TOKEN = "verifier-test-token-0123456789";
const EVENT = "evt_1";

interface State {
  event: Record<string, unknown>;
  seats: Record<string, string>;
  orders: Record<string, Record<string, unknown>>;
  holds: Record<string, Record<string, unknown>>;
  /** Answers to replayed keyed POSTs, in order. */
  replays: Record<string, { status: number; body: unknown; retryAfter?: string }[]>;
  /** Paths this API answers 404 on whatever the state says (a 201 missing on this instance). */
  missing: Set<string>;
}

function order(id: string, customerId: string, quantity: number, seats: string[] | null = null) {
  return {
    id,
    eventId: EVENT,
    customerId,
    quantity,
    seats,
    status: "confirmed",
    createdAt: "t",
    cancelledAt: null,
  };
}

function record(
  kind: ClientRecord["kind"],
  key: string,
  status: number | null,
  response: unknown,
): ClientRecord {
  return {
    kind,
    eventId: EVENT,
    idempotencyKey: key,
    method: "POST",
    path: `/v1/events/${EVENT}/${kind === "hold" ? "holds" : "orders"}`,
    body: { customerId: "c", quantity: 1 },
    status,
    response,
    startedAtMs: 0,
    endedAtMs: 0,
    instance: "i-1",
  };
}

/** A consistent sale: two orders of c1 and c2 (3 tickets), one on seats, one active hold of c3. */
function consistent(): { state: State; records: ClientRecord[] } {
  const o1 = order("ord_1", "c1", 2);
  const o2 = order("ord_2", "c2", 1, ["A-1-1"]);
  const h1 = {
    id: "hld_1",
    eventId: EVENT,
    customerId: "c3",
    quantity: 1,
    seats: ["A-1-2"],
    status: "active",
    expiresAt: "2999-01-01T00:00:00.000Z",
  };
  const o3 = order("ord_3", "c4", 1);
  return {
    state: {
      event: {
        id: EVENT,
        kind: "seated",
        capacity: 10,
        sold: 4,
        held: 1,
        available: 5,
        maxPerOrder: 4,
        maxPerCustomer: 2,
      },
      seats: { "A-1-1": "sold", "A-1-2": "held", "A-1-3": "available" },
      orders: { ord_1: o1, ord_2: o2, ord_3: o3 },
      holds: { hld_1: h1 },
      // The key in doubt: busy once, then its stored answer.
      replays: {
        k3: [
          { status: 503, body: { code: "unavailable" }, retryAfter: "0" },
          { status: 201, body: o3 },
        ],
      },
      missing: new Set(),
    },
    records: [
      record("purchase", "k1", 201, o1),
      record("purchase", "k2", 201, o2),
      record("hold", "kh", 201, h1),
      record("purchase", "k3", null, null),
    ],
  };
}

describe("the verifier", () => {
  let state: State;
  let server: http.Server;
  let baseUrl: string;
  const authorized: boolean[] = [];

  before(async () => {
    server = http.createServer((request, response) => {
      const send = (status: number, body: unknown, headers: Record<string, string> = {}) => {
        response.writeHead(status, { "content-type": "application/json", ...headers });
        response.end(JSON.stringify(body));
      };
      const path = request.url ?? "";
      if (request.method === "GET") authorized.push(request.headers.authorization === `Bearer ${TOKEN}`);
      if (state.missing.has(path)) return send(404, { code: "not_found" });
      if (request.method === "POST") {
        const key = String(request.headers["idempotency-key"]);
        const answer = state.replays[key]?.shift();
        if (answer === undefined) return send(500, { code: "internal_error" });
        return send(
          answer.status,
          answer.body,
          answer.retryAfter ? { "retry-after": answer.retryAfter } : {},
        );
      }
      if (path === `/v1/events/${EVENT}`) return send(200, state.event);
      if (path === `/v1/events/${EVENT}/seats`) {
        const seats = Object.entries(state.seats).map(([id, status]) => ({ id, status }));
        return send(200, { sections: [{ name: "A", rows: [{ row: 1, seats }] }] });
      }
      const [, kind, id] = /^\/v1\/(orders|holds)\/(.+)$/.exec(path) ?? [];
      const found = kind === "orders" ? state.orders[id!] : kind === "holds" ? state.holds[id!] : undefined;
      return found === undefined ? send(404, { code: "not_found" }) : send(200, found);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const run = (records: ClientRecord[]) =>
    verify({
      baseUrl,
      adminToken: TOKEN,
      eventIds: [EVENT],
      records,
      settleTimeoutMs: 5000,
      holdExpiryGraceMs: 1000,
    });
  const failed = (report: Awaited<ReturnType<typeof run>>) =>
    report.checks.filter((check) => !check.pass).map((check) => check.name);

  it("passes a consistent sale, settling the key in doubt by replaying it through a 503", async () => {
    const sale = consistent();
    state = sale.state;
    const report = await run(sale.records);
    assert.deepEqual(failed(report), [], JSON.stringify(report.checks));
    assert.equal(report.counts.replayed, 1);
    assert.equal(report.counts.settledCreated, 1);
    assert.equal(report.counts.sold, 4);
    assert.ok(authorized.length > 0 && authorized.every(Boolean), "every read bore the admin token");
  });

  it("fails sold-equals-orders on an order the client never got an answer for", async () => {
    const sale = consistent();
    state = sale.state;
    state.event = { ...state.event, sold: 5, available: 4 };
    assert.deepEqual(failed(await run(sale.records)), ["sold-equals-orders"]);
  });

  it("fails settled when a key stays in doubt", async () => {
    const sale = consistent();
    state = sale.state;
    state.replays.k3 = [];
    state.event = { ...state.event, sold: 3, available: 6 };
    delete state.orders.ord_3;
    assert.deepEqual(failed(await run(sale.records)), ["settled"]);
  });

  it("fails one-answer-per-key when a key got two orders", async () => {
    const sale = consistent();
    state = sale.state;
    const again = order("ord_4", "c1", 2);
    state.orders.ord_4 = again;
    state.event = { ...state.event, sold: 6, available: 3 };
    state.event.maxPerCustomer = 4;
    const report = await run([...sale.records, record("purchase", "k1", 201, again)]);
    assert.deepEqual(failed(report), ["one-answer-per-key"]);
  });

  it("fails seats when a seat is in two orders", async () => {
    const sale = consistent();
    state = sale.state;
    const twin = order("ord_5", "c5", 1, ["A-1-1"]);
    state.orders.ord_5 = twin;
    state.event = { ...state.event, sold: 5, available: 4 };
    assert.deepEqual(failed(await run([...sale.records, record("purchase", "k5", 201, twin)])), ["seats"]);
  });

  it("fails customer-limits when a customer has more than maxPerCustomer", async () => {
    const sale = consistent();
    state = sale.state;
    const more = order("ord_6", "c1", 1);
    state.orders.ord_6 = more;
    state.event = { ...state.event, sold: 5, available: 4 };
    assert.deepEqual(failed(await run([...sale.records, record("purchase", "k6", 201, more)])), [
      "customer-limits",
    ]);
  });

  it("fails holds-released when an expired hold's tickets were not given back", async () => {
    const sale = consistent();
    state = sale.state;
    const expired = { ...state.holds.hld_1!, expiresAt: "2000-01-01T00:00:00.000Z" };
    state.holds.hld_1 = { ...expired, status: "expired" };
    state.seats["A-1-2"] = "available";
    // held still counts the expired hold's ticket.
    const records = sale.records.map((r) => (r.kind === "hold" ? { ...r, response: expired } : r));
    assert.deepEqual(failed(await run(records)), ["holds-released"]);
  });

  it("fails answers-present when a 201 is missing on an instance, or changed as nobody asked", async () => {
    const sale = consistent();
    state = sale.state;
    state.missing.add("/v1/orders/ord_1");
    assert.ok(failed(await run(sale.records)).includes("answers-present"));
    const changed = consistent();
    state = changed.state;
    state.orders.ord_1 = { ...state.orders.ord_1!, status: "cancelled" };
    state.event = { ...state.event, sold: 2, available: 7 };
    assert.deepEqual(failed(await run(changed.records)), ["answers-present"]);
  });
});
