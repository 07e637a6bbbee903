/**
 * Many events on sale at once: three real server processes share one data directory (in both layouts)
 * and take purchases spread over twenty events, all sent together, so each process's sell path commits
 * several events' batches per tick (Store.executeMany: one transaction with a savepoint per event in the
 * single file, the commit threads in the per-event layout). Every event sells exactly its capacity,
 * never more, and each buyer gets their own order.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Event } from "../../src/domain/event.js";
import type { Order } from "../../src/domain/sale.js";
import { HttpClient } from "../support/http-client.js";
import { ServerProcess, stopAll } from "../support/server-process.js";

const INSTANCES = 3;
const EVENTS = 20;
const CAPACITY = 30;
const PURCHASES = 1200;

for (const layout of ["per-event", "single"] as const) {
  describe(`${INSTANCES} processes selling ${EVENTS} events at once, layout ${layout}`, () => {
    const dir = mkdtempSync(join(tmpdir(), `boxoffice-e2e-many-${layout}-`));
    const http = new HttpClient(96);
    let servers: ServerProcess[] = [];

    before(async () => {
      servers = await Promise.all(
        Array.from({ length: INSTANCES }, (_, i) =>
          ServerProcess.start({ dataDir: dir, layout, instanceId: `many-${layout}-${i}` }),
        ),
      );
    });
    after(async () => {
      await stopAll();
      await http.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const url = (i: number) => (servers[i % INSTANCES] as ServerProcess).url;

    it("sells exactly each event's capacity, never more, each buyer their own order", async () => {
      const events: Event[] = [];
      for (let e = 0; e < EVENTS; e++) {
        const created = await http.call<Event>(url(e), "/v1/events", {
          admin: true,
          body: { name: `Night ${e}`, capacity: CAPACITY, maxPerOrder: 4, maxPerCustomer: 4 },
        });
        assert.equal(created.status, 201, created.text);
        events.push(created.body);
      }
      // Buyer i buys 1–4 tickets of event i mod EVENTS through instance i mod INSTANCES: every instance
      // has every event's buyers at once. Demand is several times the capacity.
      const quantity = (i: number) => 1 + (Math.floor(i / EVENTS) % 4);
      const answers = await Promise.all(
        Array.from({ length: PURCHASES }, (_, i) =>
          http.call<Order & { code?: string }>(
            url(i),
            `/v1/events/${(events[i % EVENTS] as Event).id}/orders`,
            { body: { customerId: `buyer-${i}`, quantity: quantity(i) } },
          ),
        ),
      );
      const soldPerEvent = new Map<string, number>();
      answers.forEach((answer, i) => {
        const eventId = (events[i % EVENTS] as Event).id;
        if (answer.status === 201) {
          assert.deepEqual(
            [answer.body.eventId, answer.body.customerId, answer.body.quantity],
            [eventId, `buyer-${i}`, quantity(i)],
          );
          soldPerEvent.set(eventId, (soldPerEvent.get(eventId) ?? 0) + quantity(i));
          return;
        }
        // A busy lock on a loaded machine answers 503 and sells nothing; anything else is a refusal.
        if (answer.status === 503) return;
        assert.equal(answer.status, 409, answer.text);
        assert.equal(answer.body.code, "sold_out", answer.text);
      });
      for (const [e, event] of events.entries()) {
        const read = await http.call<Event>(url(e), `/v1/events/${event.id}`);
        assert.equal(read.status, 200);
        const sold = soldPerEvent.get(event.id) ?? 0;
        assert.deepEqual(
          [read.body.sold, read.body.held],
          [sold, 0],
          `${event.name}: what the orders add up to`,
        );
        assert.ok(sold <= CAPACITY, `${event.name} sold ${sold}`);
        // What the burst's sizes left over (less than the smallest order that came too late) is sold one
        // ticket at a time, and then the event is sold out: exactly its capacity, never more.
        for (let extra = 0; ; extra++) {
          const answer = await http.call<Order & { code?: string }>(
            url(e + extra),
            `/v1/events/${event.id}/orders`,
            {
              body: { customerId: `late-${e}-${extra}`, quantity: 1 },
            },
          );
          if (answer.status === 409) {
            assert.equal(answer.body.code, "sold_out");
            assert.equal(sold + extra, CAPACITY, `${event.name}: ${sold} in the burst, ${extra} after`);
            break;
          }
          assert.equal(answer.status, 201, answer.text);
          assert.ok(sold + extra < CAPACITY, `${event.name} sold past its capacity`);
        }
      }
      const served = new Set(answers.map((a) => a.headers["x-served-by"]));
      assert.equal(served.size, INSTANCES, "every instance sold");
    });
  });
}
