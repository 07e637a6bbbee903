/**
 * The independent checker of a sale: it reads only the HTTP API (with the admin token) and the load
 * client's log, and shares no code with the store. After the sale it
 *
 * 1. settles every keyed request in doubt (no answer, or a 5xx) by replaying it with its key, honouring
 *    Retry-After, so that every order the client caused is known to it;
 * 2. reads every event, every order and hold the client knows, and the seat maps, and checks:
 *    - `settled`: no keyed request is left in doubt (and no unkeyed write is in doubt);
 *    - `one-answer-per-key`: every key got one answer (one order or hold), and no order or hold was
 *      answered to two keys;
 *    - `sold-equals-orders`: each event's `sold` is the sum of its confirmed orders that the client
 *      knows: after settlement there is no order the client never got an answer for;
 *    - `capacity`: `sold + held <= capacity`, and `available` is what is left;
 *    - `seats`: no seat in two live orders or holds, and the seat map shows exactly the seats of the
 *      confirmed orders as sold and of the active holds as held;
 *    - `answers-present`: every 201 is there with the same content on every instance (or the base URL),
 *      and changed only as the client asked (cancelled, confirmed, released) or by expiry;
 *    - `customer-limits`: no customer holds or owns more than `maxPerCustomer`, no order more than
 *      `maxPerOrder`;
 *    - `holds-released`: every hold past its expiry is expired, and each event's `held` is what its
 *      active holds explain (an expired hold given back twice, or never, breaks that).
 */
import { Agent, request } from "undici";
import { isInDoubt, type ClientRecord } from "./client-log.js";

export interface VerifyOptions {
  /** Where to replay keys and read the state (the balancer, or one instance). */
  baseUrl: string;
  adminToken: string;
  /** The events the client sold on; every write to them must be in `records`. */
  eventIds: readonly string[];
  records: readonly ClientRecord[];
  /** Every instance to read each answered order and hold from; default: only `baseUrl`. */
  instanceUrls?: readonly string[];
  /** Longest time to keep replaying the keys in doubt (default 60 s). */
  settleTimeoutMs?: number;
  /** How long after its expiry a hold may still be active before that is a failure (default 20 s). */
  holdExpiryGraceMs?: number;
}

export interface VerifierCheck {
  name: string;
  pass: boolean;
  detail: string;
}

export interface VerifierReport {
  pass: boolean;
  checks: VerifierCheck[];
  counts: Record<string, number>;
}

/** An HTTP answer, or null for none (a network error). */
interface Answer {
  status: number;
  body: unknown;
  retryAfterSeconds: number | null;
}

interface EventState {
  id: string;
  kind: string;
  capacity: number;
  sold: number;
  held: number;
  available: number;
  maxPerOrder: number;
  maxPerCustomer: number;
}

interface Tickets {
  id: string;
  eventId: string;
  customerId: string;
  quantity: number;
  seats: string[] | null;
  status: string;
}

interface Order extends Tickets {
  createdAt: string;
  cancelledAt: string | null;
}

interface Hold extends Tickets {
  expiresAt: string;
}

const ORDER_FIELDS = ["id", "eventId", "customerId", "quantity", "seats", "createdAt"] as const;
const HOLD_FIELDS = ["id", "eventId", "customerId", "quantity", "seats", "expiresAt"] as const;
/** At most this many reads or replays at a time. */
const CONCURRENCY = 16;
/** The longest Retry-After honoured as such; a longer one is waited for this long, then retried. */
const MAX_RETRY_AFTER_SECONDS = 5;
/** How many times a snapshot of an event is read again when it moved while being read. */
const SNAPSHOT_ATTEMPTS = 8;
/** The most failing examples a check's detail lists. */
const EXAMPLES = 5;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function forEachLimited<T>(items: readonly T[], work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < items.length) await work(items[next++]!);
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, items.length) }, worker));
}

function field(value: unknown, name: string): unknown {
  return typeof value === "object" && value !== null ? (value as Record<string, unknown>)[name] : undefined;
}

function problemCode(body: unknown): string | undefined {
  const code = field(body, "code");
  return typeof code === "string" ? code : undefined;
}

/** A definite answer: the request's outcome is known (a key still in use is not one). */
function isDefinite(record: Pick<ClientRecord, "status" | "response">): boolean {
  if (isInDoubt(record)) return false;
  return !(record.status === 409 && problemCode(record.response) === "idempotency_key_in_use");
}

function createdId(record: ClientRecord): string | null {
  if (record.status !== 201) return null;
  const id = field(record.response, "id");
  return typeof id === "string" ? id : null;
}

function examples(items: readonly string[]): string {
  const shown = items.slice(0, EXAMPLES).join("; ");
  return items.length > EXAMPLES ? `${shown}; … (${items.length} in all)` : shown;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

class Reader {
  readonly #agent = new Agent({ connections: CONCURRENCY, keepAliveTimeout: 5000 });
  readonly #adminToken: string;
  fetches = 0;

  constructor(adminToken: string) {
    this.#adminToken = adminToken;
  }

  async call(
    baseUrl: string,
    method: string,
    path: string,
    body: unknown,
    headers: Readonly<Record<string, string>> = {},
  ): Promise<Answer | null> {
    this.fetches++;
    const sent: Record<string, string> = { ...headers };
    if (body !== null && body !== undefined) sent["content-type"] = "application/json";
    try {
      const response = await request(new URL(path, baseUrl), {
        method: method as "GET",
        headers: sent,
        body: body === null || body === undefined ? undefined : JSON.stringify(body),
        dispatcher: this.#agent,
        headersTimeout: 30_000,
        bodyTimeout: 30_000,
      });
      const text = await response.body.text();
      let parsed: unknown = null;
      try {
        parsed = text === "" ? null : JSON.parse(text);
      } catch {
        parsed = text;
      }
      const retryAfter = Number(response.headers["retry-after"]);
      return {
        status: response.statusCode,
        body: parsed,
        retryAfterSeconds: Number.isFinite(retryAfter) ? retryAfter : null,
      };
    } catch {
      return null;
    }
  }

  /** A GET with the admin token, retried through answers in doubt for a while. */
  async read(baseUrl: string, path: string): Promise<Answer> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const answer = await this.call(baseUrl, "GET", path, null, {
        authorization: `Bearer ${this.#adminToken}`,
      });
      if (answer !== null && answer.status < 500) return answer;
      if (Date.now() > deadline) {
        throw new Error(`GET ${baseUrl}${path}: ${answer === null ? "no answer" : answer.status} for 30 s`);
      }
      await sleep(250);
    }
  }

  async close(): Promise<void> {
    await this.#agent.close();
  }
}

/** Replays a keyed request until it has a definite answer or the deadline passes; null if it never did. */
async function replay(reader: Reader, baseUrl: string, record: ClientRecord, deadlineMs: number) {
  const headers = { ...record.headers, "idempotency-key": record.idempotencyKey! };
  for (;;) {
    const startedAtMs = Date.now();
    const answer = await reader.call(baseUrl, record.method, record.path, record.body, headers);
    const replayed: ClientRecord = {
      ...record,
      status: answer?.status ?? null,
      response: answer?.body ?? null,
      startedAtMs,
      endedAtMs: Date.now(),
      instance: null,
    };
    if (isDefinite(replayed)) return replayed;
    if (Date.now() > deadlineMs) return null;
    const waitSeconds = Math.min(answer?.retryAfterSeconds ?? 0.2, MAX_RETRY_AFTER_SECONDS);
    await sleep(Math.max(100, waitSeconds * 1000));
  }
}

export async function verify(options: VerifyOptions): Promise<VerifierReport> {
  const reader = new Reader(options.adminToken);
  try {
    return await verifyWith(reader, options);
  } finally {
    await reader.close();
  }
}

async function verifyWith(reader: Reader, options: VerifyOptions): Promise<VerifierReport> {
  const checks: VerifierCheck[] = [];
  const counts: Record<string, number> = {};
  const check = (name: string, failures: readonly string[], passDetail: string): void => {
    checks.push({
      name,
      pass: failures.length === 0,
      detail: failures.length === 0 ? passDetail : examples(failures),
    });
  };
  const events = new Set(options.eventIds);
  const records = options.records.filter((record) => events.has(record.eventId));
  counts.records = records.length;
  counts.recordsIgnored = options.records.length - records.length;
  counts.keyedRecords = records.filter((record) => record.idempotencyKey !== null).length;
  counts.inDoubt = records.filter((record) => !isDefinite(record)).length;

  // 1. Settle: every key with no definite answer in the log is replayed.
  const byKey = new Map<string, ClientRecord[]>();
  for (const record of records) {
    if (record.idempotencyKey === null) continue;
    const scope = `${record.eventId} ${record.idempotencyKey}`;
    byKey.set(scope, [...(byKey.get(scope) ?? []), record]);
  }
  const toSettle = [...byKey.values()]
    .filter((attempts) => !attempts.some(isDefinite))
    .map((attempts) => attempts[0]!);
  const settleDeadlineMs = Date.now() + (options.settleTimeoutMs ?? 60_000);
  const settled: ClientRecord[] = [];
  const unsettled: string[] = [];
  await forEachLimited(toSettle, async (record) => {
    const answer = await replay(reader, options.baseUrl, record, settleDeadlineMs);
    if (answer === null) unsettled.push(`${record.method} ${record.path} key ${record.idempotencyKey}`);
    else {
      settled.push(answer);
      byKey.get(`${record.eventId} ${record.idempotencyKey}`)!.push(answer);
    }
  });
  counts.replayed = toSettle.length;
  counts.settledCreated = settled.filter((record) => record.status === 201).length;
  const unkeyedInDoubt = records.filter(
    (record) =>
      record.idempotencyKey === null &&
      !isDefinite(record) &&
      (record.kind === "purchase" || record.kind === "hold" || record.kind === "confirm"),
  );
  counts.unkeyedWritesInDoubt = unkeyedInDoubt.length;
  check(
    "settled",
    [
      ...unsettled.map((what) => `still in doubt after replaying: ${what}`),
      ...unkeyedInDoubt.map(
        (record) => `unkeyed ${record.kind} ${record.method} ${record.path} in doubt: it cannot be settled`,
      ),
    ],
    `${toSettle.length} keys in doubt replayed, ${settled.length} settled`,
  );

  // 2. One answer per key; one key per created order or hold.
  const all = [...records, ...settled];
  const keyFailures: string[] = [];
  for (const [scope, attempts] of byKey) {
    const definite = attempts.filter(isDefinite);
    const answers = new Set(definite.map((record) => `${record.status} ${createdId(record) ?? ""}`));
    if (answers.size > 1) keyFailures.push(`key ${scope} answered ${[...answers].join(" and ")}`);
  }
  const keysOfCreated = new Map<string, Set<string>>();
  const createdRecords = new Map<string, ClientRecord>();
  for (const record of all) {
    const id = createdId(record);
    if (id === null || !isDefinite(record)) continue;
    if (!createdRecords.has(id)) createdRecords.set(id, record);
    const who = record.idempotencyKey ?? `unkeyed request at ${record.startedAtMs}`;
    keysOfCreated.set(id, (keysOfCreated.get(id) ?? new Set()).add(who));
  }
  for (const [id, keys] of keysOfCreated) {
    if (keys.size > 1) keyFailures.push(`${id} answered to ${keys.size} requests: ${[...keys].join(", ")}`);
  }
  check("one-answer-per-key", keyFailures, `${byKey.size} keys, each with one answer`);

  // 3. Every 201 there, with the same content, on every instance.
  const orderIds = [...createdRecords].filter(([, r]) => r.kind !== "hold").map(([id]) => id);
  const holdIds = [...createdRecords].filter(([, r]) => r.kind === "hold").map(([id]) => id);
  counts.orders = orderIds.length;
  counts.holds = holdIds.length;
  const requested = (method: string, path: string) =>
    all.some((record) => record.method === method && record.path === path);
  const urls = options.instanceUrls?.length ? options.instanceUrls : [options.baseUrl];
  counts.instancesRead = urls.length;
  const presentFailures: string[] = [];
  await forEachLimited([...createdRecords], async ([id, record]) => {
    const isHold = record.kind === "hold";
    const fields = isHold ? HOLD_FIELDS : ORDER_FIELDS;
    for (const url of urls) {
      const answer = await reader.read(url, `/v1/${isHold ? "holds" : "orders"}/${encodeURIComponent(id)}`);
      if (answer.status !== 200) {
        presentFailures.push(`${id} (a 201 at ${record.endedAtMs}) is ${answer.status} at ${url}`);
        continue;
      }
      const differing = fields.filter(
        (name) => !sameJson(field(answer.body, name), field(record.response, name)),
      );
      if (differing.length > 0) presentFailures.push(`${id} at ${url} differs in ${differing.join(", ")}`);
    }
  });

  // 4. Each event, read as one snapshot, against what the client knows.
  const ordersOf = new Map<string, string[]>();
  const holdsOf = new Map<string, string[]>();
  for (const [id, record] of createdRecords) {
    const into = record.kind === "hold" ? holdsOf : ordersOf;
    into.set(record.eventId, [...(into.get(record.eventId) ?? []), id]);
  }
  const soldFailures: string[] = [];
  const capacityFailures: string[] = [];
  const seatFailures: string[] = [];
  const limitFailures: string[] = [];
  const holdFailures: string[] = [];
  const tally = { confirmed: 0, cancelled: 0, active: 0, expired: 0, released: 0, holdConfirmed: 0, sold: 0 };
  const graceMs = options.holdExpiryGraceMs ?? 20_000;
  for (const eventId of options.eventIds) {
    const snapshot = await readSnapshot(reader, options.baseUrl, eventId, ordersOf, holdsOf, graceMs);
    if (snapshot === null) {
      soldFailures.push(`event ${eventId} is not found`);
      continue;
    }
    const { event, orders, holds, seatStatus, readAtMs } = snapshot;
    const live = orders.filter((order) => order.status === "confirmed");
    const active = holds.filter((hold) => hold.status === "active");
    tally.confirmed += live.length;
    tally.cancelled += orders.filter((order) => order.status === "cancelled").length;
    tally.active += active.length;
    tally.expired += holds.filter((hold) => hold.status === "expired").length;
    tally.released += holds.filter((hold) => hold.status === "released").length;
    tally.holdConfirmed += holds.filter((hold) => hold.status === "confirmed").length;
    tally.sold += event.sold;

    const soldByOrders = live.reduce((sum, order) => sum + order.quantity, 0);
    if (event.sold !== soldByOrders) {
      soldFailures.push(
        `event ${eventId}: sold ${event.sold}, but the client's confirmed orders hold ${soldByOrders}`,
      );
    }
    if (event.sold + event.held > event.capacity || event.sold < 0 || event.held < 0) {
      capacityFailures.push(`event ${eventId}: sold ${event.sold} + held ${event.held} > ${event.capacity}`);
    }
    if (event.available !== event.capacity - event.sold - event.held) {
      capacityFailures.push(`event ${eventId}: available ${event.available} is not capacity - sold - held`);
    }

    // Statuses: only what the client asked for, or expiry.
    for (const order of orders) {
      if (order.status === "cancelled" && !requested("POST", `/v1/orders/${order.id}/cancel`)) {
        presentFailures.push(`${order.id} is cancelled, but nobody cancelled it`);
      } else if (order.status !== "confirmed" && order.status !== "cancelled") {
        presentFailures.push(`${order.id} has status ${order.status}`);
      }
    }
    for (const hold of holds) {
      const overdue = Date.parse(hold.expiresAt) <= readAtMs;
      const allowed =
        hold.status === "active" ||
        (hold.status === "expired" && overdue) ||
        (hold.status === "confirmed" && requested("POST", `/v1/holds/${hold.id}/confirm`)) ||
        (hold.status === "released" && requested("DELETE", `/v1/holds/${hold.id}`));
      if (!allowed) presentFailures.push(`${hold.id} became ${hold.status}, which nobody asked for`);
      if (hold.status === "active" && Date.parse(hold.expiresAt) + graceMs <= readAtMs) {
        holdFailures.push(
          `${hold.id} is still active ${readAtMs - Date.parse(hold.expiresAt)} ms past expiry`,
        );
      }
    }
    const heldByHolds = active.reduce((sum, hold) => sum + hold.quantity, 0);
    if (event.held !== heldByHolds) {
      holdFailures.push(
        `event ${eventId}: held ${event.held}, but the client's active holds hold ${heldByHolds}`,
      );
    }

    // Customers and order sizes.
    const perCustomer = new Map<string, number>();
    for (const tickets of [...live, ...active]) {
      perCustomer.set(tickets.customerId, (perCustomer.get(tickets.customerId) ?? 0) + tickets.quantity);
      if (tickets.quantity > event.maxPerOrder) {
        limitFailures.push(
          `${tickets.id}: ${tickets.quantity} tickets, more than maxPerOrder ${event.maxPerOrder}`,
        );
      }
    }
    for (const [customerId, tickets] of perCustomer) {
      if (tickets > event.maxPerCustomer) {
        limitFailures.push(
          `event ${eventId}: customer ${customerId} has ${tickets}, more than maxPerCustomer ${event.maxPerCustomer}`,
        );
      }
    }

    // Seats: no seat twice, and the map shows exactly what the orders and holds say.
    if (event.kind === "seated" || seatStatus.size > 0) {
      const owner = new Map<string, string>();
      for (const tickets of [...live, ...active]) {
        const want = tickets.status === "confirmed" ? "sold" : "held";
        for (const seat of tickets.seats ?? []) {
          const other = owner.get(seat);
          if (other !== undefined)
            seatFailures.push(`seat ${seat} of event ${eventId} is in ${other} and ${tickets.id}`);
          owner.set(seat, tickets.id);
          if (seatStatus.get(seat) !== want) {
            seatFailures.push(
              `seat ${seat} of ${tickets.id} shows ${seatStatus.get(seat) ?? "nothing"}, not ${want}`,
            );
          }
        }
      }
      for (const [seat, status] of seatStatus) {
        if (status !== "available" && !owner.has(seat)) {
          seatFailures.push(
            `seat ${seat} of event ${eventId} is ${status}, but in no order or hold the client knows`,
          );
        }
      }
    }
  }
  Object.assign(counts, {
    ordersConfirmed: tally.confirmed,
    ordersCancelled: tally.cancelled,
    holdsActive: tally.active,
    holdsExpired: tally.expired,
    holdsReleased: tally.released,
    holdsConfirmed: tally.holdConfirmed,
    sold: tally.sold,
  });
  check(
    "sold-equals-orders",
    soldFailures,
    `sold ${tally.sold} = the client's ${tally.confirmed} confirmed orders`,
  );
  check("capacity", capacityFailures, `${options.eventIds.length} events within capacity`);
  check("seats", seatFailures, "no seat in two live orders or holds; seat maps agree");
  check(
    "answers-present",
    presentFailures,
    `${createdRecords.size} answers present alike on ${urls.length} ${urls.length === 1 ? "URL" : "instances"}`,
  );
  check("customer-limits", limitFailures, "maxPerCustomer and maxPerOrder held");
  check(
    "holds-released",
    holdFailures,
    `${tally.expired} expired holds released once; held = the ${tally.active} active holds`,
  );
  counts.fetches = reader.fetches;
  return { pass: checks.every((entry) => entry.pass), checks, counts };
}

interface Snapshot {
  event: EventState;
  orders: Order[];
  holds: Hold[];
  seatStatus: Map<string, string>;
  readAtMs: number;
}

/**
 * Reads an event, its known orders and holds and its seat map, between two reads of the event's counters;
 * read again when the counters moved in between (a sweep expired a hold) or when a hold is past its expiry
 * but still active (the next sweep will take it), until the grace runs out.
 */
async function readSnapshot(
  reader: Reader,
  baseUrl: string,
  eventId: string,
  ordersOf: ReadonlyMap<string, string[]>,
  holdsOf: ReadonlyMap<string, string[]>,
  graceMs: number,
): Promise<Snapshot | null> {
  const eventPath = `/v1/events/${encodeURIComponent(eventId)}`;
  let snapshot: Snapshot | null = null;
  for (let attempt = 0; attempt < SNAPSHOT_ATTEMPTS || snapshot === null; attempt++) {
    const before = await reader.read(baseUrl, eventPath);
    if (before.status === 404) return null;
    const orders: Order[] = [];
    const holds: Hold[] = [];
    await forEachLimited(ordersOf.get(eventId) ?? [], async (id) => {
      const answer = await reader.read(baseUrl, `/v1/orders/${encodeURIComponent(id)}`);
      if (answer.status === 200) orders.push(answer.body as Order);
    });
    await forEachLimited(holdsOf.get(eventId) ?? [], async (id) => {
      const answer = await reader.read(baseUrl, `/v1/holds/${encodeURIComponent(id)}`);
      if (answer.status === 200) holds.push(answer.body as Hold);
    });
    const seatStatus = new Map<string, string>();
    const seats = await reader.read(baseUrl, `${eventPath}/seats`);
    const sections = field(seats.body, "sections");
    for (const section of Array.isArray(sections) ? sections : []) {
      for (const row of (field(section, "rows") as unknown[]) ?? []) {
        for (const seat of (field(row, "seats") as unknown[]) ?? []) {
          seatStatus.set(String(field(seat, "id")), String(field(seat, "status")));
        }
      }
    }
    const readAtMs = Date.now();
    const after = await reader.read(baseUrl, eventPath);
    const event = after.body as EventState;
    snapshot = { event, orders, holds, seatStatus, readAtMs };
    const steady = field(before.body, "sold") === event.sold && field(before.body, "held") === event.held;
    const overdue = holds.filter(
      (hold) => hold.status === "active" && Date.parse(hold.expiresAt) <= readAtMs,
    );
    const waitingForSweep =
      overdue.length > 0 && overdue.every((hold) => Date.parse(hold.expiresAt) + graceMs > readAtMs);
    if (steady && !waitingForSweep) return snapshot;
    await sleep(waitingForSweep ? 1000 : 100);
    if (waitingForSweep) attempt = 0;
  }
  return snapshot;
}
