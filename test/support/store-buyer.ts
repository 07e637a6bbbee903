/**
 * A buyer process for the cross-process store tests: opens the store on a shared data directory and
 * sends `rounds` batches of purchases for one event straight to Store.execute, with no lock at all, so
 * that only the store's own guarded writes stand between the processes and overselling.
 * Prints one JSON line: { sold: number (tickets in confirmed outcomes), refused: {code: count}, orders: [ids] }.
 *
 * argv: <dir> <layout> <eventId> <rounds> <batch> <kind general|seated|typed> <seatCount>
 */
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import type { Command, Order } from "../../src/domain/sale.js";

const [dir, layout, eventId, roundsText, batchText, kind, seatCountText] = process.argv.slice(2);
if (!dir || !eventId || (layout !== "single" && layout !== "per-event")) throw new Error("usage: see header");
const store = new SqliteStore({ kind: "sqlite", dir, layout, durability: "full", maxOpenEvents: 8 });
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
  if (kind === "seated") {
    // Overlapping requests: a run of adjacent seats starting anywhere in row 1.
    const start = 1 + Math.floor(Math.random() * Math.max(1, seatCount - quantity + 1));
    const seats = Array.from({ length: quantity }, (_, k) => `A-1-${Math.min(seatCount, start + k)}`);
    return {
      type: "purchase",
      customerId: `p${process.pid}-${i}`,
      selection: { quantity: new Set(seats).size, seats: [...new Set(seats)] },
      idempotency: null,
    };
  }
  return {
    type: "purchase",
    customerId: `p${process.pid}-${i}`,
    selection: { quantity, seats: null },
    idempotency: null,
  };
}

let sold = 0;
const refused: Record<string, number> = {};
const orders: string[] = [];
let n = 0;
for (let round = 0; round < Number(roundsText); round++) {
  const commands = Array.from({ length: Number(batchText) }, () => randomCommand(n++));
  const outcomes = await store.execute(eventId, commands, null, new Date());
  for (const outcome of outcomes) {
    if (outcome.ok) {
      const order = outcome.value as Order;
      sold += order.quantity;
      orders.push(order.id);
    } else refused[outcome.refusal.code] = (refused[outcome.refusal.code] ?? 0) + 1;
  }
}
await store.close();
console.log(JSON.stringify({ sold, refused, orders }));
