/**
 * The sale on real server processes sharing one store (SQLite per-event, SQLite single file,
 * PostgreSQL): three instances, one of them started with its JavaScript clock 30 s ahead
 * (test/support/shifted-clock.ts through `node --import`).
 *
 * - The sale window is judged by the database's clock: the instances open and close the sale at the
 *   same instant. Buyers ask the instances in turn, one request after another; the answers, in the
 *   order they were given, go sale_not_open … 201 … sale_closed without ever going back, whichever
 *   instance answered. (The shifted instance, judging by its own clock, would answer sale_closed from
 *   the start: the window lies between its clock and the others'.)
 * - A pause stops every instance within one batch: every purchase sent after the pause was answered is
 *   refused with sale_paused, on every instance, and what sold is exactly the 201s.
 * - Ticket-type quotas and the event's capacity hold together under concurrent buyers of several types
 *   on every instance; every total is the sum of its lines at the event's prices; a body that carries a
 *   price is refused.
 * - Hold → extend → confirm with a payment reference, PATCH of the capacity below sold + held refused,
 *   and the report, over HTTP.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { Event } from "../../src/domain/event.js";
import type { EventReport } from "../../src/domain/report.js";
import type { Hold, Order } from "../../src/domain/sale.js";
import { HttpClient, type HttpAnswer } from "../support/http-client.js";
import { dropSchema, freshSchemaName } from "../support/postgres-test-store.js";
import { ServerProcess, stopAll } from "../support/server-process.js";
import { postgresSkip, TEST_POSTGRES_URL } from "../support/services.js";

const SHIFT_MS = 30_000;
const SHIFTED_CLOCK = pathToFileURL(fileURLToPath(new URL("../support/shifted-clock.js", import.meta.url)));
const pgSkip = await postgresSkip();

type Answer = HttpAnswer<Order & Hold & { code?: string; opensAt?: string }>;

interface Backend {
  name: string;
  skip?: string;
  /** Server arguments, and what to clean up afterwards. */
  setUp(): { dataDir: string; args: string[]; layout?: "single" | "per-event"; cleanup(): Promise<void> };
}

const BACKENDS: Backend[] = [
  ...(["per-event", "single"] as const).map((layout): Backend => ({
    name: `SQLite ${layout}`,
    setUp: () => {
      const dataDir = mkdtempSync(join(tmpdir(), `boxoffice-e2e-sale-${layout}-`));
      return {
        dataDir,
        args: [],
        layout,
        cleanup: async () => rmSync(dataDir, { recursive: true, force: true }),
      };
    },
  })),
  {
    name: "PostgreSQL",
    skip: pgSkip,
    setUp: () => {
      const dataDir = mkdtempSync(join(tmpdir(), "boxoffice-e2e-sale-pg-"));
      const schema = freshSchemaName("sale");
      const url = new URL(TEST_POSTGRES_URL);
      url.searchParams.set("schema", schema);
      return {
        dataDir,
        args: ["--store", url.toString(), "--pg-pool-size", "4"],
        cleanup: async () => {
          await dropSchema(TEST_POSTGRES_URL, schema);
          rmSync(dataDir, { recursive: true, force: true });
        },
      };
    },
  },
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

for (const backend of BACKENDS) {
  describe(
    `the sale on three real instances, one 30 s ahead: ${backend.name}`,
    { skip: backend.skip },
    () => {
      const http = new HttpClient(64);
      let servers: ServerProcess[] = [];
      let cleanup: () => Promise<void> = async () => undefined;
      const url = (i: number) => (servers[i % servers.length] as ServerProcess).url;

      before(async () => {
        const setUp = backend.setUp();
        cleanup = setUp.cleanup;
        // One at a time, so that PostgreSQL migrations do not race in the first start.
        for (const [i, shifted] of [false, true, false].entries()) {
          servers.push(
            await ServerProcess.start({
              dataDir: setUp.dataDir,
              layout: setUp.layout,
              instanceId: `sale-${i}${shifted ? "-ahead" : ""}`,
              args: setUp.args,
              env: shifted
                ? {
                    NODE_OPTIONS: `--import=${SHIFTED_CLOCK.href}`,
                    BOXOFFICE_TEST_CLOCK_SHIFT_MS: String(SHIFT_MS),
                  }
                : {},
            }),
          );
        }
      });
      after(async () => {
        await stopAll();
        await http.close();
        await cleanup();
        servers = [];
      });

      async function createEvent(body: Record<string, unknown>): Promise<Event> {
        const created = await http.call<Event>(url(0), "/v1/events", { admin: true, body });
        assert.equal(created.status, 201, created.text);
        return created.body;
      }

      it("runs the shifted instance's JavaScript clock 30 s ahead (the premise of the next test)", async () => {
        const hold = async (i: number): Promise<Hold> => {
          const answer = await http.call<Hold>(url(i), `/v1/events/${event.id}/holds`, {
            body: { customerId: `clock-${i}`, quantity: 1, ttlSeconds: 600 },
          });
          assert.equal(answer.status, 201, answer.text);
          return answer.body;
        };
        const event = await createEvent({ name: "Clock check", capacity: 10 });
        const [plain, ahead] = [await hold(0), await hold(1)];
        // A hold's expiry is the instance's own clock + its TTL.
        const skewMs = Date.parse(ahead.expiresAt) - Date.parse(plain.expiresAt);
        assert.ok(skewMs > SHIFT_MS - 5000 && skewMs < SHIFT_MS + 5000, `skew ${skewMs} ms`);
      });

      it("opens and closes the sale at the same instant on every instance: the database's clock", async () => {
        const opensInMs = 3000;
        const openForMs = 4000;
        const startMs = Date.now() + opensInMs;
        const salesStartAt = new Date(startMs).toISOString();
        const salesEndAt = new Date(startMs + openForMs).toISOString();
        const event = await createEvent({
          name: "Window",
          capacity: 100_000,
          maxPerCustomer: 1000,
          salesStartAt,
          salesEndAt,
        });
        assert.equal(event.state, "scheduled");
        const rank = { sale_not_open: 0, ok: 1, sale_closed: 2 } as const;
        const seen: { instance: number; state: keyof typeof rank }[] = [];
        const deadline = startMs + openForMs + 20_000;
        for (let i = 0; ; i++) {
          const instance = i % servers.length;
          const answer: Answer = await http.call(url(instance), `/v1/events/${event.id}/orders`, {
            body: { customerId: `window-${i % 500}`, quantity: 1 },
          });
          const state = answer.status === 201 ? "ok" : answer.body.code;
          assert.ok(state === "ok" || state === "sale_not_open" || state === "sale_closed", answer.text);
          if (state === "sale_not_open") assert.equal(answer.body.opensAt, salesStartAt);
          seen.push({ instance, state });
          const closedEverywhere = [0, 1, 2].every((n) =>
            seen.some((s) => s.instance === n && s.state === "sale_closed"),
          );
          if (closedEverywhere) break;
          assert.ok(Date.now() < deadline, "the sale never closed on every instance");
          if (state === "sale_not_open") await sleep(50);
        }
        // One request after another: the answers never go back, whichever instance gave them.
        for (let i = 1; i < seen.length; i++) {
          const [before, now] = [seen[i - 1]!, seen[i]!];
          assert.ok(
            rank[before.state] <= rank[now.state],
            `answer ${i} went back from ${before.state} (instance ${before.instance}) to ${now.state} (instance ${now.instance})`,
          );
        }
        for (const n of [0, 1, 2]) {
          for (const state of ["sale_not_open", "ok", "sale_closed"] as const) {
            assert.ok(
              seen.some((s) => s.instance === n && s.state === state),
              `instance ${n} never answered ${state}`,
            );
          }
        }
        const read = await http.call<Event>(url(1), `/v1/events/${event.id}`);
        assert.equal(read.body.state, "closed");
        assert.equal(read.body.sold, seen.filter((s) => s.state === "ok").length);
      });

      it("a pause stops every instance's sales within one batch; resume sells again", async () => {
        const event = await createEvent({ name: "Pause", capacity: 100_000, maxPerCustomer: 1000 });
        const buy = (i: number, tag: string): Promise<Answer> =>
          http.call(url(i), `/v1/events/${event.id}/orders`, {
            body: { customerId: `${tag}-${i % 300}`, quantity: 1 },
          });
        // A stream of buyers on every instance while the pause is sent.
        const during: Promise<Answer>[] = [];
        for (let i = 0; i < 300; i++) during.push(buy(i, "during"));
        await sleep(20);
        const paused = await http.call<Event>(url(1), `/v1/events/${event.id}/pause`, {
          admin: true,
          body: {},
        });
        assert.equal(paused.status, 200, paused.text);
        assert.equal(paused.body.state, "paused");
        // Every purchase sent after the pause was answered is refused, on every instance.
        const afterPause = await Promise.all(Array.from({ length: 120 }, (_, i) => buy(i, "after")));
        for (const answer of afterPause) {
          assert.equal(answer.status, 409, answer.text);
          assert.equal(answer.body.code, "sale_paused");
        }
        const duringAnswers = await Promise.all(during);
        for (const answer of duringAnswers) {
          assert.ok(answer.status === 201 || answer.body.code === "sale_paused", answer.text);
        }
        const sold = duringAnswers.filter((a) => a.status === 201).length;
        const read = await http.call<Event>(url(2), `/v1/events/${event.id}`);
        assert.equal(read.body.sold, sold, "exactly the 201s sold");
        const resumed = await http.call<Event>(url(2), `/v1/events/${event.id}/resume`, {
          admin: true,
          body: {},
        });
        assert.equal(resumed.body.state, "on_sale");
        const again = await Promise.all([0, 1, 2].map((i) => buy(i, "resumed")));
        assert.deepEqual(
          again.map((a) => a.status),
          [201, 201, 201],
        );
      });

      it("keeps every ticket type's quota and the capacity under concurrent buyers of several types", async () => {
        const prices: Record<string, number> = { vip: 15_000, std: 6_000, kid: 2_500 };
        const event = await createEvent({
          name: "Quotas",
          capacity: 200,
          maxPerOrder: 6,
          maxPerCustomer: 6,
          currency: "GBP",
          ticketTypes: [
            { id: "vip", name: "VIP", price: prices.vip, quota: 40, maxPerOrder: 2 },
            { id: "std", name: "Standard", price: prices.std, quota: 150 },
            { id: "kid", name: "Child", price: prices.kid, quota: 60, maxPerOrder: 4 },
          ],
        });
        const quotas: Record<string, number> = { vip: 40, std: 150, kid: 60 };
        const answers = await Promise.all(
          Array.from({ length: 600 }, (_, i) => {
            const items = [
              { ticketTypeId: "vip", quantity: 1 + (i % 2) },
              { ticketTypeId: "std", quantity: 1 + (i % 2) },
              { ticketTypeId: "kid", quantity: 1 + ((i >> 1) % 2) },
            ].filter((_, k) => (i >> k) % 2 === 1 || k === i % 3);
            const path = i % 5 === 0 ? "holds" : "orders";
            return http.call<Order & Hold & { code?: string }>(url(i), `/v1/events/${event.id}/${path}`, {
              body: { customerId: `q-${i}`, items },
            });
          }),
        );
        const taken: Record<string, number> = { vip: 0, std: 0, kid: 0 };
        let soldTickets = 0;
        let heldTickets = 0;
        for (const answer of answers) {
          if (answer.status !== 201) {
            assert.ok(answer.body.code === "sold_out", answer.text);
            continue;
          }
          const lines = answer.body.lines;
          assert.equal(answer.body.currency, "GBP");
          assert.equal(
            answer.body.total,
            lines.reduce((sum, line) => sum + line.subtotal, 0),
          );
          for (const line of lines) {
            assert.equal(line.unitPrice, prices[line.id], "the event's price, never another");
            assert.equal(line.subtotal, line.quantity * line.unitPrice);
            taken[line.id] = (taken[line.id] ?? 0) + line.quantity;
          }
          const quantity = answer.body.quantity;
          if (typeof answer.body.expiresAt === "string") heldTickets += quantity;
          else soldTickets += quantity;
        }
        for (const id of Object.keys(quotas)) assert.ok(taken[id]! <= quotas[id]!, `${id} past its quota`);
        assert.ok(soldTickets + heldTickets <= 200, "past the capacity");
        const report = await http.call<EventReport>(url(1), `/v1/events/${event.id}/report`, { admin: true });
        assert.equal(report.status, 200, report.text);
        assert.deepEqual([report.body.sold, report.body.held], [soldTickets, heldTickets]);
        for (const tier of report.body.tiers) {
          assert.equal(tier.sold + tier.held, taken[tier.id], `report of ${tier.id}`);
          assert.equal(tier.revenue, tier.sold * prices[tier.id]!);
        }
        // The demand was several times the supply: the capacity or a quota ran out.
        assert.ok(
          soldTickets + heldTickets === 200 || Object.keys(quotas).some((id) => taken[id] === quotas[id]),
          "nothing ran out",
        );
      });

      it("never takes a price from the buyer; hold → extend → confirm with a payment reference; PATCH", async () => {
        const event = await createEvent({
          name: "Checkout",
          capacity: 5,
          ticketTypes: [{ id: "ga", name: "GA", price: 3_000 }],
        });
        const priced = [
          { customerId: "p", quantity: 1, price: 1 },
          { customerId: "p", quantity: 1, unitPrice: 1 },
          { customerId: "p", items: [{ ticketTypeId: "ga", quantity: 1, price: 1 }] },
          { customerId: "p", quantity: 1, total: 1 },
        ];
        for (const body of priced) {
          const answer = await http.call<{ code: string }>(url(0), `/v1/events/${event.id}/orders`, { body });
          assert.equal(answer.status, 422, answer.text);
          assert.equal(answer.body.code, "invalid_request");
        }
        const held = await http.call<Hold & { secret: string }>(url(1), `/v1/events/${event.id}/holds`, {
          body: { customerId: "h", quantity: 2, ttlSeconds: 60 },
        });
        assert.equal(held.status, 201, held.text);
        assert.equal(held.body.total, 6_000);
        const owner = { "x-order-secret": held.body.secret };
        const extended = await http.call<Hold>(url(2), `/v1/holds/${held.body.id}/extend`, {
          body: { ttlSeconds: 900 },
          headers: owner,
        });
        assert.equal(extended.status, 200, extended.text);
        assert.ok(Date.parse(extended.body.expiresAt) > Date.parse(held.body.expiresAt));
        const below = await http.call<{ code: string }>(url(0), `/v1/events/${event.id}`, {
          method: "PATCH",
          admin: true,
          body: { capacity: 1 },
        });
        assert.equal(below.status, 409, below.text);
        assert.equal(below.body.code, "capacity_below_taken");
        const confirmed = await http.call<Order>(url(0), `/v1/holds/${held.body.id}/confirm`, {
          body: { paymentReference: "pi_3NxTest" },
          headers: owner,
        });
        assert.equal(confirmed.status, 201, confirmed.text);
        assert.equal(confirmed.body.paymentReference, "pi_3NxTest");
        assert.deepEqual([confirmed.body.total, confirmed.body.lines], [6_000, held.body.lines]);
        const edited = await http.call<Event>(url(1), `/v1/events/${event.id}`, {
          method: "PATCH",
          admin: true,
          body: { capacity: 2, name: "Checkout (moved)" },
        });
        assert.equal(edited.status, 200, edited.text);
        assert.deepEqual([edited.body.capacity, edited.body.available], [2, 0]);
        const noRoom = await http.call<{ code: string }>(url(2), `/v1/events/${event.id}/orders`, {
          body: { customerId: "late", quantity: 1 },
        });
        assert.equal(noRoom.body.code, "sold_out");
      });
    },
  );
}
