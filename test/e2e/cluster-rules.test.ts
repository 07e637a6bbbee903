/**
 * Three real server processes on one data directory: idempotency across instances, a customer's limit
 * across instances, hold expiry exactly once with every instance sweeping, confirm rules, and 50 kinds of
 * bad input over real HTTP. The holds
 * are created first (the shortest hold lasts 30 s) and checked last, so the wait overlaps the rest.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Event, SeatMap } from "../../src/domain/event.js";
import type { Hold, Order } from "../../src/domain/sale.js";
import { badInputs } from "../support/bad-inputs.js";
import { HttpClient } from "../support/http-client.js";
import { E2E_ADMIN_TOKEN, ServerProcess, stopAll } from "../support/server-process.js";

const INSTANCES = 3;
const HOLD_TTL_SECONDS = 30;

type Problem = { code: string; status: number; seats?: string[] };

describe(`${INSTANCES} processes: idempotency, holds, bad input`, () => {
  const dir = mkdtempSync(join(tmpdir(), "boxoffice-e2e-rules-"));
  const http = new HttpClient(32);
  let servers: ServerProcess[] = [];
  let holdEvent: Event;
  let seatEvent: Event;
  let expiring: Hold[] = [];
  let holdsCreatedAt = 0;

  const url = (i: number) => (servers[i % INSTANCES] as ServerProcess).url;
  const createEvent = async (body: object) => {
    const created = await http.call<Event>(url(0), "/v1/events", { admin: true, body });
    assert.equal(created.status, 201, created.text);
    return created.body;
  };
  const readEvent = async (id: string, i = 0) => (await http.call<Event>(url(i), `/v1/events/${id}`)).body;

  before(async () => {
    servers = await Promise.all(
      Array.from({ length: INSTANCES }, (_, i) =>
        ServerProcess.start({
          dataDir: dir,
          instanceId: `rules-${i}`,
          args: ["--sweep-interval-ms", "500"],
        }),
      ),
    );
    holdEvent = await createEvent({ name: "Holds", capacity: 100 });
    seatEvent = await createEvent({
      name: "Held seats",
      seating: { sections: [{ name: "A", rows: 1, seatsPerRow: 6 }] },
    });
    holdsCreatedAt = Date.now();
    const general = Array.from({ length: 11 }, (_, i) =>
      http.call<Hold>(url(i), `/v1/events/${holdEvent.id}/holds`, {
        body: { customerId: `holder-${i}`, quantity: 2, ttlSeconds: HOLD_TTL_SECONDS },
      }),
    );
    const seated = [0, 1, 2].map((i) =>
      http.call<Hold>(url(i), `/v1/events/${seatEvent.id}/holds`, {
        body: {
          customerId: `seat-holder-${i}`,
          seats: [`A-1-${2 * i + 1}`, `A-1-${2 * i + 2}`],
          ttlSeconds: 30,
        },
      }),
    );
    const answers = await Promise.all([...general, ...seated]);
    for (const answer of answers) assert.equal(answer.status, 201, answer.text);
    expiring = answers.map((a) => a.body);
  });
  after(async () => {
    await stopAll();
    await http.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("makes one order from one key sent at once to two processes, and replays it from a third", async () => {
    const event = await createEvent({ name: "Idempotent", capacity: 1000 });
    const keys = Array.from({ length: 20 }, (_, i) => `retry-${i}-${Date.now()}`);
    const answers = await Promise.all(
      keys.flatMap((key) =>
        [0, 1].map((i) =>
          http.call<Order>(url(i), `/v1/events/${event.id}/orders`, {
            body: { customerId: `buyer-${key}`, quantity: 2 },
            headers: { "idempotency-key": key },
          }),
        ),
      ),
    );
    const ids = new Map<string, string>();
    answers.forEach((answer, n) => {
      assert.equal(answer.status, 201, answer.text);
      const key = keys[Math.floor(n / 2)] as string;
      const seen = ids.get(key);
      if (seen) assert.equal(answer.body.id, seen, "both copies answer the same order");
      ids.set(key, answer.body.id);
    });
    assert.equal(new Set(ids.values()).size, keys.length);
    const counted = await http.call<Event>(url(2), `/v1/events/${event.id}`);
    assert.equal(counted.body.sold, 2 * keys.length, "one order per key");

    const key = keys[0] as string;
    const replay = await http.call<Order>(url(2), `/v1/events/${event.id}/orders`, {
      body: { quantity: 2, customerId: `buyer-${key}` },
      headers: { "idempotency-key": key },
    });
    assert.equal(replay.status, 201);
    assert.equal(replay.body.id, ids.get(key));
    assert.equal(replay.headers["x-served-by"], "rules-2");

    const reused = await http.call<Problem>(url(1), `/v1/events/${event.id}/orders`, {
      body: { customerId: `buyer-${key}`, quantity: 3 },
      headers: { "idempotency-key": key },
    });
    assert.equal(reused.status, 422);
    assert.equal(reused.body.code, "idempotency_key_reused");

    // Keys are scoped per event: the same key buys afresh on another event.
    const other = await createEvent({ name: "Other", capacity: 10 });
    const elsewhere = await http.call<Order>(url(0), `/v1/events/${other.id}/orders`, {
      body: { customerId: `buyer-${key}`, quantity: 2 },
      headers: { "idempotency-key": key },
    });
    assert.equal(elsewhere.status, 201);
    assert.notEqual(elsewhere.body.id, ids.get(key));
    assert.equal((await http.call<Event>(url(0), `/v1/events/${event.id}`)).body.sold, 2 * keys.length);
  });

  it("confirms a hold once: a second confirm is 409, unless it repeats the first one's key", async () => {
    const event = await createEvent({ name: "Confirm", capacity: 10 });
    const hold = await http.call<Hold>(url(0), `/v1/events/${event.id}/holds`, {
      body: { customerId: "cart", quantity: 3 },
    });
    assert.equal(hold.status, 201);
    const key = {
      "idempotency-key": `confirm-${hold.body.id}`,
      "x-order-secret": (hold.body as Hold & { secret: string }).secret,
    };
    const first = await http.call<Order>(url(1), `/v1/holds/${hold.body.id}/confirm`, {
      method: "POST",
      headers: key,
    });
    assert.equal(first.status, 201, first.text);
    assert.equal(first.headers.location, `/v1/orders/${first.body.id}`);
    const again = await http.call<Problem>(url(2), `/v1/holds/${hold.body.id}/confirm`, {
      method: "POST",
      admin: true,
    });
    assert.equal(again.status, 409);
    assert.equal(again.body.code, "hold_not_active");
    const replay = await http.call<Order>(url(2), `/v1/holds/${hold.body.id}/confirm`, {
      method: "POST",
      headers: key,
    });
    assert.equal(replay.status, 201);
    assert.equal(replay.body.id, first.body.id);
    const after = await readEvent(event.id, 1);
    assert.deepEqual([after.sold, after.held, after.available], [3, 0, 7]);
  });

  it("holds maxPerCustomer across processes: 12 purchases by one customer at once on 3 make 4 tickets", async () => {
    const limited = await createEvent({ name: "Limited", capacity: 100, maxPerOrder: 4, maxPerCustomer: 4 });
    const answers = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        http.call<Order | Problem>(url(i), `/v1/events/${limited.id}/orders`, {
          body: { customerId: "one-fan", quantity: 1 },
          headers: { "idempotency-key": `limit-${i}` },
        }),
      ),
    );
    const codes = answers.map((a) => (a.status === 201 ? "201" : `${a.status} ${(a.body as Problem).code}`));
    assert.deepEqual(
      codes.filter((code) => code !== "201"),
      Array(8).fill("409 customer_limit_reached"),
      codes.join(", "),
    );
    const event = await readEvent(limited.id, 1);
    assert.deepEqual([event.sold, event.held, event.available], [4, 0, 96]);
  });

  it("refuses 50 kinds of bad input over HTTP with the listed code, and changes nothing", async () => {
    const general = await createEvent({ name: "Bad input", capacity: 10, maxPerOrder: 4 });
    const seated = await createEvent({
      name: "Bad seats",
      seating: { sections: [{ name: "A", rows: 2, seatsPerRow: 3 }] },
    });
    const state = async () =>
      (await http.call<{ events: Event[] }>(url(2), "/v1/events?limit=100")).body.events.map((e) => [
        e.id,
        e.sold,
        e.held,
      ]);
    const before = await state();
    const cases = badInputs({ generalId: general.id, seatedId: seated.id, adminToken: E2E_ADMIN_TOKEN });
    assert.ok(cases.length >= 30);
    for (const [n, bad] of cases.entries()) {
      const answer = await http.call<Problem>(url(n), bad.url, {
        method: bad.method,
        headers: bad.headers,
        body: bad.body,
      });
      assert.equal(answer.status, bad.status, `${bad.name}: ${answer.text}`);
      assert.match(String(answer.headers["content-type"]), /^application\/problem\+json/, bad.name);
      assert.equal(answer.body.code, bad.code, bad.name);
      assert.equal(answer.headers["x-served-by"], `rules-${n % INSTANCES}`, bad.name);
    }
    // Counters of every event are as before (the holds created above are still within their time).
    assert.deepEqual(await state(), before);
  });

  it("gives expired holds back exactly once with every instance sweeping; confirm after is 410", async () => {
    const deadline = holdsCreatedAt + (HOLD_TTL_SECONDS + 30) * 1000;
    const during = await readEvent(holdEvent.id);
    assert.equal(during.held, 22, "the holds still count while they last");
    let seen = during;
    while (Date.now() < deadline) {
      seen = await readEvent(holdEvent.id, Math.floor(Math.random() * INSTANCES));
      const seats = await http.call<SeatMap>(url(0), `/v1/events/${seatEvent.id}/seats`);
      const taken = seats.body.sections
        .flatMap((s) => s.rows.flatMap((r) => r.seats))
        .filter((s) => s.status !== "available");
      if (seen.held === 0 && taken.length === 0) break;
      await sleep(500);
    }
    assert.deepEqual([seen.sold, seen.held, seen.available], [0, 0, 100], "tickets back, exactly once");
    const seatsBack = await readEvent(seatEvent.id, 2);
    assert.deepEqual([seatsBack.sold, seatsBack.held, seatsBack.available], [0, 0, 6]);

    // Each hold was expired by exactly one sweeper: the instances' counts add up to the number of holds.
    let expiredByAll = 0;
    for (let i = 0; i < INSTANCES; i++) {
      const metrics = await http.call<string>(url(i), "/metrics");
      const match = /^boxoffice_holds_expired_total\{[^}]*\} (\d+)/m.exec(metrics.text);
      expiredByAll += Number(match?.[1] ?? 0);
    }
    assert.equal(expiredByAll, expiring.length);

    const late = expiring[0] as Hold;
    const confirm = await http.call<Problem>(url(1), `/v1/holds/${late.id}/confirm`, {
      method: "POST",
      admin: true,
    });
    assert.equal(confirm.status, 410);
    assert.equal(confirm.body.code, "hold_expired");
    const release = await http.call(url(2), `/v1/holds/${late.id}`, { method: "DELETE", admin: true });
    assert.equal(release.status, 204);
    const got = await http.call<Hold>(url(0), `/v1/holds/${late.id}`, { admin: true });
    assert.equal(got.body.status, "expired");
    const final = await readEvent(holdEvent.id, 2);
    assert.deepEqual([final.sold, final.held, final.available], [0, 0, 100]);
  });
});
