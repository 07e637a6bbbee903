/**
 * Requests that must be refused with a 4xx problem and change nothing: used by the inject() unit test
 * and by the end-to-end test against real processes. Bodies are raw strings, sent exactly as written.
 */
export interface BadInputTargets {
  /** A general-admission event (capacity > 0, maxPerOrder 4). */
  generalId: string;
  /** A reserved-seating event with section A, 2 rows of 3. */
  seatedId: string;
  adminToken: string;
}

export interface BadInput {
  name: string;
  method: "GET" | "POST" | "DELETE";
  url: string;
  headers: Record<string, string>;
  /** Sent as is; undefined sends no body. */
  body?: string;
  status: number;
  code: string;
}

const JSON_TYPE = { "content-type": "application/json" };

export function badInputs(t: BadInputTargets): BadInput[] {
  const orders = `/v1/events/${t.generalId}/orders`;
  const seatedOrders = `/v1/events/${t.seatedId}/orders`;
  const holds = `/v1/events/${t.generalId}/holds`;
  const admin = { ...JSON_TYPE, authorization: `Bearer ${t.adminToken}` };
  const post = (name: string, url: string, body: string | undefined, status: number, code: string) => ({
    name,
    method: "POST" as const,
    url,
    headers: JSON_TYPE,
    body,
    status,
    code,
  });
  const order = (name: string, body: string, status = 422, code = "invalid_request") =>
    post(name, orders, body, status, code);
  return [
    order("quantity as a string", `{"customerId":"c","quantity":"2"}`),
    order("quantity zero", `{"customerId":"c","quantity":0}`),
    order("negative quantity", `{"customerId":"c","quantity":-1}`),
    order("fractional quantity", `{"customerId":"c","quantity":1.5}`),
    order("huge quantity", `{"customerId":"c","quantity":1e300}`),
    order("quantity over maxPerOrder", `{"customerId":"c","quantity":5}`),
    order("quantity null", `{"customerId":"c","quantity":null}`),
    order("quantity as boolean", `{"customerId":"c","quantity":true}`),
    order("customerId missing", `{"quantity":1}`),
    order("customerId empty", `{"customerId":"","quantity":1}`),
    order("customerId a number", `{"customerId":42,"quantity":1}`),
    order("customerId too long", JSON.stringify({ customerId: "c".repeat(201), quantity: 1 })),
    order("customerId with a control character", `{"customerId":"a\\u0007b","quantity":1}`),
    order("customerId with a newline", `{"customerId":"a\\nb","quantity":1}`),
    order("customerId a lone surrogate", `{"customerId":"a\\ud800b","quantity":1}`),
    order("customerId only spaces", `{"customerId":"   ","quantity":1}`),
    order("customerId with a line separator", `{"customerId":"a\\u2028b","quantity":1}`),
    order("unknown field", `{"customerId":"c","quantity":1,"price":0}`),
    order("__proto__ key", `{"customerId":"c","quantity":1,"__proto__":{"admin":true}}`),
    order("constructor.prototype key", `{"customerId":"c","quantity":1,"constructor":{"prototype":{"x":1}}}`),
    order("constructor key", `{"customerId":"c","quantity":1,"constructor":1}`),
    order("broken JSON", `{"customerId":"c","quantity":1`),
    order("trailing garbage", `{"customerId":"c","quantity":1} x`),
    order("an array instead of an object", `[{"customerId":"c","quantity":1}]`),
    order("a bare string", `"hello"`),
    order("null body", `null`),
    order("both quantity and seats", `{"customerId":"c","quantity":1,"seats":["A-1-1"]}`),
    order("neither quantity nor seats", `{"customerId":"c"}`),
    order("seats for a general event", `{"customerId":"c","seats":["A-1-1"]}`),
    post("empty body", orders, "", 422, "invalid_request"),
    post(
      "quantity for a seated event",
      seatedOrders,
      `{"customerId":"c","quantity":1}`,
      422,
      "invalid_request",
    ),
    post(
      "a repeated seat",
      seatedOrders,
      `{"customerId":"c","seats":["A-1-1","A-1-1"]}`,
      422,
      "invalid_request",
    ),
    post("an unknown seat", seatedOrders, `{"customerId":"c","seats":["A-9-9"]}`, 422, "invalid_request"),
    post("seats not strings", seatedOrders, `{"customerId":"c","seats":[1,2]}`, 422, "invalid_request"),
    post("an empty seat list", seatedOrders, `{"customerId":"c","seats":[]}`, 422, "invalid_request"),
    post(
      "hold ttl too short",
      holds,
      `{"customerId":"c","quantity":1,"ttlSeconds":5}`,
      422,
      "invalid_request",
    ),
    post(
      "hold ttl as a string",
      holds,
      `{"customerId":"c","quantity":1,"ttlSeconds":"60"}`,
      422,
      "invalid_request",
    ),
    post(
      "oversize body",
      orders,
      JSON.stringify({ customerId: "c", quantity: 1, pad: "x".repeat(70_000) }),
      413,
      "payload_too_large",
    ),
    {
      name: "wrong content type",
      method: "POST",
      url: orders,
      headers: { "content-type": "text/plain" },
      body: `{"customerId":"c","quantity":1}`,
      status: 415,
      code: "unsupported_media_type",
    },
    {
      name: "bad Idempotency-Key",
      method: "POST",
      url: orders,
      headers: { ...JSON_TYPE, "idempotency-key": "x".repeat(201) },
      body: `{"customerId":"c","quantity":1}`,
      status: 422,
      code: "invalid_request",
    },
    post(
      "order for a malformed event id",
      "/v1/events/evt_nope/orders",
      `{"customerId":"c","quantity":1}`,
      404,
      "event_not_found",
    ),
    post(
      "order for an unknown event",
      "/v1/events/evt_01M8AKHCS1946YADPE8BEJQ35Q/orders",
      `{"customerId":"c","quantity":1}`,
      404,
      "event_not_found",
    ),
    post("confirm a malformed hold id", "/v1/holds/hld_x/confirm", undefined, 404, "hold_not_found"),
    post("cancel a malformed order id", "/v1/orders/ord_x/cancel", undefined, 404, "order_not_found"),
    post("confirm with a body", `/v1/holds/hld_x/confirm`, `{"force":true}`, 422, "invalid_request"),
    {
      name: "release a malformed hold id",
      method: "DELETE",
      url: "/v1/holds/%00",
      headers: {},
      status: 404,
      code: "hold_not_found",
    },
    {
      name: "event without admin token",
      method: "POST",
      url: "/v1/events",
      headers: JSON_TYPE,
      body: `{"name":"x","capacity":1}`,
      status: 401,
      code: "unauthorized",
    },
    {
      name: "event with capacity 0",
      method: "POST",
      url: "/v1/events",
      headers: admin,
      body: `{"name":"x","capacity":0}`,
      status: 422,
      code: "invalid_request",
    },
    {
      name: "event over a million",
      method: "POST",
      url: "/v1/events",
      headers: admin,
      body: `{"name":"x","capacity":1000001}`,
      status: 422,
      code: "invalid_request",
    },
    {
      name: "event with unknown field",
      method: "POST",
      url: "/v1/events",
      headers: admin,
      body: `{"name":"x","capacity":1,"vip":true}`,
      status: 422,
      code: "invalid_request",
    },
  ];
}
