/**
 * Order access and the operator's order list through inject(), with --buyer-auth none (the embedded
 * default): an order or hold is read, cancelled, confirmed or released only with its secret (header or
 * ?secret=) or the admin token, and anybody else gets the 404 an unknown id gets; an Idempotency-Key
 * is scoped to the customer; the list and the CSV export are the admin's, filtered and paged.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Event } from "../../../src/domain/event.js";
import type { Hold, Order } from "../../../src/domain/sale.js";
import { csvCell } from "../../../src/server/orders-csv.js";
import type { AppFixture } from "../../support/app-fixture.js";
import { ADMIN_TOKEN, problemCode, startAppFixture } from "../../support/app-fixture.js";

type WithSecret<T> = T & { secret: string };
const admin = { authorization: `Bearer ${ADMIN_TOKEN}` };

describe("order access (--buyer-auth none)", () => {
  let fx: AppFixture;
  let event: Event;
  before(async () => {
    fx = await startAppFixture();
    event = await fx.createEvent({ name: "Access", capacity: 100, maxPerCustomer: 50 });
  });
  after(() => fx.close());

  const buy = async (customerId: string, quantity = 1, headers: Record<string, string> = {}) => {
    const answer = await fx.app.inject({
      method: "POST",
      url: `/v1/events/${event.id}/orders`,
      payload: { customerId, quantity },
      headers,
    });
    assert.equal(answer.statusCode, 201, answer.body);
    return answer.json<WithSecret<Order>>();
  };
  const hold = async (customerId: string) => {
    const answer = await fx.app.inject({
      method: "POST",
      url: `/v1/events/${event.id}/holds`,
      payload: { customerId, quantity: 1 },
    });
    assert.equal(answer.statusCode, 201, answer.body);
    return answer.json<WithSecret<Hold>>();
  };

  it("answers a secret of 43 base64url characters, different per order, and the same on a replay", async () => {
    const a = await buy("s1", 1, { "idempotency-key": "k-secret" });
    const b = await buy("s1");
    assert.match(a.secret, /^[A-Za-z0-9_-]{43}$/);
    assert.notEqual(a.secret, b.secret);
    const replay = await buy("s1", 1, { "idempotency-key": "k-secret" });
    assert.deepEqual(replay, a);
  });

  it("reads and cancels an order only with its secret or the admin token; anybody else gets 404", async () => {
    const order = await buy("victim");
    const other = await buy("attacker");
    const attempts: [string, Record<string, string>, string][] = [
      ["nothing", {}, ""],
      ["another order's secret", { "x-order-secret": other.secret }, ""],
      [
        "a secret one character off",
        {
          "x-order-secret":
            `${order.secret.slice(0, -1)}A` === order.secret
              ? `${order.secret.slice(0, -1)}B`
              : `${order.secret.slice(0, -1)}A`,
        },
        "",
      ],
      ["a truncated secret", { "x-order-secret": order.secret.slice(0, 20) }, ""],
      ["the secret in the wrong query field", {}, `?token=${order.secret}`],
    ];
    for (const [what, headers, query] of attempts) {
      for (const [method, path] of [
        ["GET", `/v1/orders/${order.id}`],
        ["POST", `/v1/orders/${order.id}/cancel`],
      ] as const) {
        const answer = await fx.app.inject({ method, url: `${path}${query}`, headers });
        assert.equal(answer.statusCode, 404, `${what}: ${method} ${path}`);
        assert.equal(problemCode(answer), "order_not_found");
      }
    }
    // The same answer as for an order that never existed: the id alone tells nothing.
    const unknown = await fx.app.inject({ method: "GET", url: `/v1/orders/${order.id.slice(0, -1)}0` });
    assert.equal(unknown.statusCode, 404);
    assert.equal((await fx.store.getOrder(order.id))?.status, "confirmed", "nothing was cancelled");

    const { secret, ...stored } = order;
    const byHeader = await fx.app.inject({
      method: "GET",
      url: `/v1/orders/${order.id}`,
      headers: { "x-order-secret": secret },
    });
    assert.deepEqual(byHeader.json(), stored);
    const byLink = await fx.app.inject({ method: "GET", url: `/v1/orders/${order.id}?secret=${secret}` });
    assert.deepEqual(byLink.json(), stored);
    const byAdmin = await fx.app.inject({ method: "GET", url: `/v1/orders/${order.id}`, headers: admin });
    assert.deepEqual(byAdmin.json(), stored);
    const cancelled = await fx.app.inject({
      method: "POST",
      url: `/v1/orders/${order.id}/cancel`,
      headers: { "x-order-secret": secret },
    });
    assert.equal(cancelled.statusCode, 200);
    assert.equal(cancelled.json<Order>().status, "cancelled");
  });

  it("lets no one confirm, release or read another's hold, and confirms with the hold's secret", async () => {
    const mine = await hold("holder");
    const theirs = await hold("thief");
    for (const [method, path] of [
      ["GET", `/v1/holds/${mine.id}`],
      ["POST", `/v1/holds/${mine.id}/confirm`],
      ["DELETE", `/v1/holds/${mine.id}`],
    ] as const) {
      for (const headers of [
        {},
        { "x-order-secret": theirs.secret },
        { authorization: "Bearer not-the-admin-token" },
      ]) {
        const answer = await fx.app.inject({ method, url: path, headers });
        assert.ok([401, 404].includes(answer.statusCode), `${method} ${path}: ${answer.statusCode}`);
        if (answer.statusCode === 404) assert.equal(problemCode(answer), "hold_not_found");
      }
    }
    assert.equal((await fx.store.getHold(mine.id))?.status, "active", "the hold is untouched");
    const confirmed = await fx.app.inject({
      method: "POST",
      url: `/v1/holds/${mine.id}/confirm`,
      headers: { "x-order-secret": mine.secret },
    });
    assert.equal(confirmed.statusCode, 201);
    const order = confirmed.json<WithSecret<Order>>();
    assert.notEqual(order.secret, mine.secret, "the order has a secret of its own");
    const read = await fx.app.inject({
      method: "GET",
      url: `/v1/orders/${order.id}`,
      headers: { "x-order-secret": order.secret },
    });
    assert.equal(read.statusCode, 200);
    const released = await fx.app.inject({ method: "DELETE", url: `/v1/holds/${theirs.id}`, headers: admin });
    assert.equal(released.statusCode, 204, "the admin may release any hold");
  });

  it("answers 401 to a bearer that is not the admin token (none takes no buyer tokens)", async () => {
    const order = await buy("bearer");
    const answer = await fx.app.inject({
      method: "GET",
      url: `/v1/orders/${order.id}`,
      headers: { authorization: "Bearer someone-elses-jwt", "x-order-secret": order.secret },
    });
    assert.equal(answer.statusCode, 401);
    assert.equal(problemCode(answer), "unauthorized");
  });

  it("scopes an Idempotency-Key to the customer: the same key from another never gets the first answer", async () => {
    const key = { "idempotency-key": "shared-key" };
    const first = await buy("ann", 2, key);
    const second = await buy("bob", 2, key);
    assert.notEqual(second.id, first.id);
    assert.notEqual(second.secret, first.secret);
    assert.equal(second.customerId, "bob");
    // Nor can another customer's request claim the key: ann's retry still replays her order.
    assert.deepEqual(await buy("ann", 2, key), first);
    const reused = await fx.app.inject({
      method: "POST",
      url: `/v1/events/${event.id}/orders`,
      payload: { customerId: "ann", quantity: 3 },
      headers: key,
    });
    assert.equal(problemCode(reused), "idempotency_key_reused");
  });

  it("scopes a confirm's key to the hold's owner: another buyer's confirm with the key cannot claim it", async () => {
    const ann = await hold("ann-h");
    const bob = await hold("bob-h");
    const key = "confirm-shared";
    const bobs = await fx.app.inject({
      method: "POST",
      url: `/v1/holds/${bob.id}/confirm`,
      headers: { "idempotency-key": key, "x-order-secret": bob.secret },
    });
    assert.equal(bobs.statusCode, 201);
    const anns = await fx.app.inject({
      method: "POST",
      url: `/v1/holds/${ann.id}/confirm`,
      headers: { "idempotency-key": key, "x-order-secret": ann.secret },
    });
    assert.equal(anns.statusCode, 201, anns.body);
    assert.equal(anns.json<Order>().customerId, "ann-h");
  });

  it("needs customerId without a buyer token", async () => {
    const answer = await fx.app.inject({
      method: "POST",
      url: `/v1/events/${event.id}/orders`,
      payload: { quantity: 1 },
    });
    assert.equal(answer.statusCode, 422);
    assert.equal(problemCode(answer), "invalid_request");
  });
});

describe("the operator's order list and CSV export", () => {
  let fx: AppFixture;
  let event: Event;
  const orders: Order[] = [];
  before(async () => {
    fx = await startAppFixture({ layout: "single" });
    event = await fx.createEvent({ name: "Listed", capacity: 1000, maxPerCustomer: 1000 });
    const customers = ["plain", 'has "quotes", commas', "=1+2", "+cmd", "-2", "@SUM(A1)", "Zoë, née ‹x›"];
    for (let i = 0; i < 21; i++) {
      const answer = await fx.app.inject({
        method: "POST",
        url: `/v1/events/${event.id}/orders`,
        payload: { customerId: customers[i % customers.length], quantity: 1 + (i % 3) },
      });
      assert.equal(answer.statusCode, 201, answer.body);
      const { secret: _secret, ...order } = answer.json<WithSecret<Order>>();
      orders.push(order);
    }
    const cancelled = await fx.app.inject({
      method: "POST",
      url: `/v1/orders/${orders[4]?.id}/cancel`,
      headers: admin,
    });
    orders[4] = cancelled.json<Order>();
  });
  after(() => fx.close());

  const list = (query: string, headers: Record<string, string> = admin) =>
    fx.app.inject({ method: "GET", url: `/v1/events/${event.id}/orders${query}`, headers });

  it("is the admin's: a buyer or a stranger gets 401", async () => {
    assert.equal(problemCode(await list("", {})), "unauthorized");
    assert.equal(problemCode(await list("", { authorization: "Bearer nope" })), "unauthorized");
    const csv = await fx.app.inject({ method: "GET", url: `/v1/events/${event.id}/orders.csv` });
    assert.equal(csv.statusCode, 401);
  });

  it("pages with a cursor through every order once, in id order", async () => {
    const seen: Order[] = [];
    let cursor: string | null = null;
    do {
      const answer = await list(`?limit=4${cursor ? `&cursor=${cursor}` : ""}`);
      assert.equal(answer.statusCode, 200, answer.body);
      const page = answer.json<{ orders: Order[]; nextCursor: string | null }>();
      seen.push(...page.orders);
      cursor = page.nextCursor;
    } while (cursor !== null);
    assert.deepEqual(seen, orders);
  });

  it("filters by status, customer and time", async () => {
    const cancelled = await list("?status=cancelled");
    assert.deepEqual(cancelled.json<{ orders: Order[] }>().orders, [orders[4]]);
    const theirs = await list(`?customerId=${encodeURIComponent("=1+2")}`);
    assert.deepEqual(
      theirs.json<{ orders: Order[] }>().orders,
      orders.filter((o) => o.customerId === "=1+2"),
    );
    const from = orders[10]?.createdAt as string;
    const later = await list(`?createdAfter=${encodeURIComponent(from)}`);
    assert.ok(later.json<{ orders: Order[] }>().orders.every((o) => o.createdAt >= from));
    const none = await list(`?createdBefore=${encodeURIComponent("2000-01-01T00:00:00Z")}`);
    assert.deepEqual(none.json(), { orders: [], nextCursor: null });
  });

  it("refuses malformed filters with 422 and an unknown event with 404", async () => {
    for (const query of [
      "?limit=0",
      "?limit=1001",
      "?status=paid",
      "?cursor=evt_x",
      "?createdAfter=yesterday",
      "?createdAfter=2026-02-31T00:00:00Z",
      "?extra=1",
    ]) {
      const answer = await list(query);
      assert.equal(answer.statusCode, 422, `${query}: ${answer.body}`);
    }
    const unknown = await fx.app.inject({
      method: "GET",
      url: "/v1/events/evt_01M8AKHCS1946YADPE8BEJQ35Q/orders.csv",
      headers: admin,
    });
    assert.equal(unknown.statusCode, 404);
    assert.equal(problemCode(unknown), "event_not_found");
  });

  it("exports CSV: a header, one line per order, quoted as RFC 4180 says, formulas defused", async () => {
    const answer = await fx.app.inject({
      method: "GET",
      url: `/v1/events/${event.id}/orders.csv`,
      headers: admin,
    });
    assert.equal(answer.statusCode, 200);
    assert.match(String(answer.headers["content-type"]), /^text\/csv/);
    assert.match(
      String(answer.headers["content-disposition"]),
      /attachment; filename="evt_[^"]+-orders\.csv"/,
    );
    const lines = parseCsv(answer.body);
    assert.deepEqual(lines[0], [
      "id",
      "eventId",
      "customerId",
      "quantity",
      "seats",
      "status",
      "createdAt",
      "cancelledAt",
      "items",
      "total",
      "currency",
      "paymentReference",
    ]);
    assert.equal(lines.length, orders.length + 1);
    lines.slice(1).forEach((cells, i) => {
      const order = orders[i] as Order;
      const shown = /^[=+\-@]/.test(order.customerId) ? `'${order.customerId}` : order.customerId;
      assert.deepEqual(cells, [
        order.id,
        order.eventId,
        shown,
        String(order.quantity),
        "",
        order.status,
        order.createdAt,
        order.cancelledAt ?? "",
        order.lines.map((line) => `${line.id}:${line.quantity}:${line.unitPrice}`).join(" "),
        String(order.total),
        order.currency,
        order.paymentReference ?? "",
      ]);
    });
    const filtered = parseCsv(
      (
        await fx.app.inject({
          method: "GET",
          url: `/v1/events/${event.id}/orders.csv?status=cancelled`,
          headers: admin,
        })
      ).body,
    );
    assert.deepEqual(
      filtered.slice(1).map((cells) => cells[0]),
      [orders[4]?.id],
    );
  });

  it("quotes and defuses cells", () => {
    assert.equal(csvCell("plain"), "plain");
    assert.equal(csvCell('a "b", c'), '"a ""b"", c"');
    assert.equal(csvCell("x\r\ny"), '"x\r\ny"');
    assert.equal(csvCell('=HYPERLINK("http://evil")'), '"\'=HYPERLINK(""http://evil"")"');
    assert.equal(csvCell("+1"), "'+1");
    assert.equal(csvCell("-1"), "'-1");
    assert.equal(csvCell("@x"), "'@x");
    assert.equal(csvCell("\tx"), "'\tx");
    assert.equal(csvCell(null), "");
    assert.equal(csvCell(3), "3");
  });
});

/** An RFC 4180 reader written for this test: quoted cells with doubled quotes and line breaks inside. */
function parseCsv(text: string): string[][] {
  const rows: string[][] = [];
  let row: string[] = [];
  let cell = "";
  let quoted = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (quoted) {
      if (c === '"' && text[i + 1] === '"') {
        cell += '"';
        i++;
      } else if (c === '"') quoted = false;
      else cell += c;
    } else if (c === '"') quoted = true;
    else if (c === ",") {
      row.push(cell);
      cell = "";
    } else if (c === "\r" && text[i + 1] === "\n") {
      row.push(cell);
      rows.push(row);
      row = [];
      cell = "";
      i++;
    } else cell += c;
  }
  assert.equal(cell, "", "the text ends with a line break");
  return rows;
}
