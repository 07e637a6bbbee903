/**
 * A buyer process for the cross-process PostgreSQL tests: opens a PostgresStore and sends `buyers`
 * purchases for one event straight to Store.execute, `concurrency` at a time, with no lock at all, so
 * that only the database's guarded statements stand between the processes and overselling. A purchase
 * that fails with a retryable error (server restarting, pool busy) is counted under its code, not retried.
 * Prints one JSON line: { sold, refused: {code: n}, errors: {code: n}, orders: [ids] }.
 *
 * argv: <url> <schema> <eventId> <buyers> <concurrency> <general|seated|typed> <seatCount>
 */
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";
import { BoxofficeError } from "../../src/domain/errors.js";
import type { Command, Order } from "../../src/domain/sale.js";

const [url, schema, eventId, buyersText, concurrencyText, kind, seatCountText] = process.argv.slice(2);
if (!url || !schema || !eventId) throw new Error("usage: see header");
const concurrency = Number(concurrencyText);
const store = new PostgresStore({ url, schema, poolSize: concurrency, statementTimeoutMs: 5000 });
await store.init();

const seatCount = Number(seatCountText ?? 0);
/** "typed": items of the ticket types TYPED_TICKET_TYPES (sales-checks.ts), 1-2 of one to three of them. */
const TYPE_IDS = ["vip", "std", "kid"];
function randomCommand(i: number): Command {
  const quantity = 1 + Math.floor(Math.random() * 4);
  if (kind === "typed") {
    const items = TYPE_IDS.filter((_, k) => Math.random() < 0.5 || k === i % 3).map((ticketTypeId) => ({
      ticketTypeId,
      quantity: 1 + Math.floor(Math.random() * 2),
    }));
    const total = items.reduce((sum, item) => sum + item.quantity, 0);
    return {
      type: "purchase",
      customerId: `p${process.pid}-${i}`,
      selection: { quantity: total, seats: null, items },
      idempotency: null,
    };
  }
  const customerId = `p${process.pid}-${i}`;
  if (kind === "seated") {
    // Overlapping requests: a run of adjacent seats starting anywhere in row 1.
    const start = 1 + Math.floor(Math.random() * Math.max(1, seatCount - quantity + 1));
    const seats = [
      ...new Set(Array.from({ length: quantity }, (_, k) => `A-1-${Math.min(seatCount, start + k)}`)),
    ];
    return { type: "purchase", customerId, selection: { quantity: seats.length, seats }, idempotency: null };
  }
  return { type: "purchase", customerId, selection: { quantity, seats: null }, idempotency: null };
}

let sold = 0;
const refused: Record<string, number> = {};
const errors: Record<string, number> = {};
const orders: string[] = [];
let next = 0;
const total = Number(buyersText);
async function worker(): Promise<void> {
  while (next < total) {
    const command = randomCommand(next++);
    try {
      const [outcome] = await store.execute(eventId as string, [command], null, new Date());
      if (outcome?.ok) {
        const order = outcome.value as Order;
        sold += order.quantity;
        orders.push(order.id);
      } else if (outcome) refused[outcome.refusal.code] = (refused[outcome.refusal.code] ?? 0) + 1;
    } catch (error) {
      const code = error instanceof BoxofficeError ? error.code : "UNEXPECTED";
      errors[code] = (errors[code] ?? 0) + 1;
      if (code === "UNEXPECTED") console.error(error);
    }
  }
}
await Promise.all(Array.from({ length: concurrency }, worker));
await store.close();
console.log(JSON.stringify({ sold, refused, errors, orders }));
