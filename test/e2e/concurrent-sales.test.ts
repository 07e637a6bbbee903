/**
 * Four real server processes share one data directory (in both layouts) and take 1,000 concurrent
 * purchases: never more sold than there is, never a seat in two orders, and every answer accounted for.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Event, SeatMap } from "../../src/domain/event.js";
import type { Order } from "../../src/domain/sale.js";
import { HttpClient } from "../support/http-client.js";
import type { HttpAnswer } from "../support/http-client.js";
import { ServerProcess, stopAll } from "../support/server-process.js";

const INSTANCES = 4;
const PURCHASES = 1000;

/** A small seeded generator, so that a failure can be replayed. */
function random(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

for (const layout of ["per-event", "single"] as const) {
  describe(`${INSTANCES} processes, one data directory, layout ${layout}`, () => {
    const dir = mkdtempSync(join(tmpdir(), `boxoffice-e2e-sales-${layout}-`));
    const http = new HttpClient(64);
    let servers: ServerProcess[] = [];

    before(async () => {
      servers = await Promise.all(
        Array.from({ length: INSTANCES }, (_, i) =>
          ServerProcess.start({ dataDir: dir, layout, instanceId: `sales-${layout}-${i}` }),
        ),
      );
    });
    after(async () => {
      await stopAll();
      await http.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const url = (i: number) => (servers[i % INSTANCES] as ServerProcess).url;

    async function getOrders(answers: HttpAnswer<Order>[]): Promise<Order[]> {
      return Promise.all(
        answers.map(async (answer, i) => {
          const { secret, ...sold } = answer.body as Order & { secret: string };
          const got = await http.call<Order>(url(i + 1), `/v1/orders/${sold.id}`, {
            headers: { "x-order-secret": secret },
          });
          assert.equal(got.status, 200);
          assert.deepEqual(got.body, sold);
          return got.body;
        }),
      );
    }

    it("sells exactly the capacity of a general event to 1,000 concurrent buyers", async () => {
      const created = await http.call<Event>(url(0), "/v1/events", {
        admin: true,
        body: { name: "Hot night", capacity: 500, maxPerOrder: 4, maxPerCustomer: 4 },
      });
      assert.equal(created.status, 201);
      const event = created.body;
      const next = random(42);
      const quantities = Array.from({ length: PURCHASES }, () => 1 + Math.floor(next() * 4));
      const answers = await Promise.all(
        quantities.map((quantity, i) =>
          http.call<Order & { code?: string }>(url(i), `/v1/events/${event.id}/orders`, {
            body: { customerId: `buyer-${i}`, quantity },
          }),
        ),
      );
      answers.forEach((answer, i) => {
        if (answer.status !== 201) return;
        // Each buyer got their own order, not a neighbour's from the same batch.
        assert.deepEqual([answer.body.customerId, answer.body.quantity], [`buyer-${i}`, quantities[i]]);
      });
      const sold = answers.filter((a) => a.status === 201);
      const refused = answers.filter((a) => a.status !== 201);
      for (const answer of refused) {
        assert.equal(answer.status, 409, answer.text);
        assert.equal(answer.body.code, "sold_out");
      }
      const servedBy = new Set(answers.map((a) => a.headers["x-served-by"]));
      assert.equal(servedBy.size, INSTANCES, "every instance answered");
      assert.equal(
        sold.reduce((sum, a) => sum + a.body.quantity, 0),
        500,
      );
      const orders = await getOrders(sold);
      assert.equal(new Set(orders.map((o) => o.id)).size, orders.length);
      assert.equal(
        orders.reduce((sum, o) => sum + (o.status === "confirmed" ? o.quantity : 0), 0),
        500,
      );
      // The burst was batched: some sell batch carried more than one command.
      const metrics = await http.call<string>(url(0), "/metrics");
      assert.match(metrics.text, /boxoffice_sell_batch_size_bucket\{le="1"[^}]*\} \d+/);
      const batches = /boxoffice_sell_batch_size_count\{[^}]*\} (\d+)/.exec(metrics.text);
      const perInstance = answers.filter((a) => a.headers["x-served-by"] === servers[0]?.instanceId).length;
      assert.ok(Number(batches?.[1]) < perInstance, `${batches?.[1]} batches for ${perInstance} requests`);
      for (let i = 0; i < INSTANCES; i++) {
        const seen = await http.call<Event>(url(i), `/v1/events/${event.id}`);
        assert.deepEqual([seen.body.sold, seen.body.held, seen.body.available], [500, 0, 0]);
      }
    });

    it("never puts a seat in two orders when 1,000 buyers ask for overlapping seats", async () => {
      const rows = 10;
      const seatsPerRow = 20;
      const created = await http.call<Event>(url(1), "/v1/events", {
        admin: true,
        body: {
          name: "Seated night",
          seating: { sections: [{ name: "A", rows, seatsPerRow }] },
          maxPerOrder: 4,
        },
      });
      assert.equal(created.status, 201);
      const event = created.body;
      const next = random(7);
      const requests = Array.from({ length: PURCHASES }, () => {
        const count = 1 + Math.floor(next() * 4);
        const row = 1 + Math.floor(next() * rows);
        const first = 1 + Math.floor(next() * (seatsPerRow - count + 1));
        return Array.from({ length: count }, (_, k) => `A-${row}-${first + k}`);
      });
      const answers = await Promise.all(
        requests.map((seats, i) =>
          http.call<Order & { code?: string; seats: string[] }>(url(i), `/v1/events/${event.id}/orders`, {
            body: { customerId: `fan-${i}`, seats },
          }),
        ),
      );
      answers.forEach((answer, i) => {
        if (answer.status === 201)
          assert.deepEqual([answer.body.customerId, answer.body.seats], [`fan-${i}`, requests[i]]);
      });
      const sold = answers.filter((a) => a.status === 201);
      for (const answer of answers.filter((a) => a.status !== 201)) {
        assert.equal(answer.status, 409, answer.text);
        assert.equal(answer.body.code, "seats_unavailable");
        assert.ok(answer.body.seats.length > 0);
      }
      const orders = await getOrders(sold);
      const soldSeats = orders.flatMap((o) => o.seats ?? []);
      assert.equal(new Set(soldSeats).size, soldSeats.length, "no seat in two orders");
      const seen = await http.call<Event>(url(2), `/v1/events/${event.id}`);
      assert.equal(seen.body.sold, soldSeats.length);
      assert.equal(seen.body.available, rows * seatsPerRow - soldSeats.length);
      const map = await http.call<SeatMap>(url(3), `/v1/events/${event.id}/seats`);
      const mapSold = map.body.sections
        .flatMap((s) => s.rows.flatMap((r) => r.seats))
        .filter((s) => s.status !== "available")
        .map((s) => s.id);
      assert.deepEqual(mapSold.sort(), [...soldSeats].sort(), "the seat map agrees with the orders");
    });
  });
}
