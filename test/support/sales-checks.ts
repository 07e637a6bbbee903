/**
 * The checks every cross-process oversell test makes, whatever the store: the event sold exactly its
 * capacity, the confirmed answers and the stored orders add up to it, and no seat is in two orders.
 */
import assert from "node:assert/strict";
import type { NewEventRequest } from "../../src/domain/event.js";
import type { TierReport } from "../../src/domain/report.js";
import type { Store } from "../../src/store/store.js";

/**
 * The event the "typed" buyers (store-buyer.ts, postgres-store-buyer.ts) buy from: three ticket types
 * whose quotas add up to more than the capacity, so that both a quota and the capacity run out.
 */
export const TYPED_EVENT: NewEventRequest = {
  name: "Typed",
  capacity: 120,
  maxPerOrder: 6,
  maxPerCustomer: 6,
  ticketTypes: [
    { id: "vip", name: "VIP", price: 15_000, quota: 25 },
    { id: "std", name: "Standard", price: 6_000, quota: 80 },
    { id: "kid", name: "Child", price: 2_500, quota: 40 },
  ],
};

/**
 * Several ticket types sold by processes with no lock: no type past its quota, the event exactly at
 * its capacity or a type at its quota, the stored orders' lines add up to the report's counters, and
 * every total is the sum of its lines at the event's prices.
 */
export async function assertQuotasHold(
  store: Store,
  eventId: string,
  answers: { sold: number; orderIds: string[]; refusedCodes: string[] },
): Promise<void> {
  const types = TYPED_EVENT.ticketTypes ?? [];
  const byType = new Map<string, number>();
  let soldByOrders = 0;
  for (const id of answers.orderIds) {
    const order = await store.getOrder(id);
    assert.ok(order, `order ${id} is in the store`);
    soldByOrders += order.quantity;
    assert.equal(
      order.total,
      order.lines.reduce((sum, line) => sum + line.subtotal, 0),
    );
    for (const line of order.lines) {
      const type = types.find((t) => t.id === line.id);
      assert.equal(line.unitPrice, type?.price, "the event's price");
      byType.set(line.id, (byType.get(line.id) ?? 0) + line.quantity);
    }
  }
  const report = await store.getReport(eventId);
  assert.ok(report);
  assert.equal(report.sold, soldByOrders, "every ticket sold is in an order");
  assert.equal(answers.sold, soldByOrders, "the confirmed answers add up to the orders");
  assert.ok(report.sold <= (TYPED_EVENT.capacity ?? 0), "past the capacity");
  for (const type of types) {
    const id = type.id ?? "";
    const tier: TierReport | undefined = report.tiers.find((t) => t.id === id);
    assert.equal(tier?.sold, byType.get(id) ?? 0, `${id}: the report agrees with the orders`);
    assert.ok((tier?.sold ?? 0) <= (type.quota ?? Infinity), `${id} past its quota`);
  }
  assert.ok(
    report.sold === TYPED_EVENT.capacity ||
      types.some((t) => report.tiers.find((r) => r.id === t.id)?.sold === t.quota),
    "the demand was larger than the supply, yet nothing ran out",
  );
  assert.deepEqual([...new Set(answers.refusedCodes)], ["sold_out"]);
}

/** General admission: sold == answered == stored == capacity, and the rest were told sold_out. */
export async function assertExactSellout(
  store: Store,
  eventId: string,
  capacity: number,
  answers: { sold: number; orderIds: string[]; refusedCodes: string[] },
): Promise<void> {
  let soldByOrders = 0;
  for (const id of answers.orderIds) soldByOrders += (await store.getOrder(id))?.quantity ?? 0;
  assert.equal((await store.getEvent(eventId))?.sold, capacity);
  assert.equal(answers.sold, capacity, "the confirmed answers add up to the capacity");
  assert.equal(soldByOrders, capacity, "every confirmed answer is an order in the store");
  assert.deepEqual([...new Set(answers.refusedCodes)], ["sold_out"]);
}

/** Reserved seating: no seat in two orders, and the seat map and the counter agree with the orders. */
export async function assertSeatsSoldOnce(store: Store, eventId: string, orderIds: string[]): Promise<void> {
  const owner = new Map<string, string>();
  for (const id of orderIds) {
    const order = await store.getOrder(id);
    for (const seat of order?.seats ?? []) {
      assert.ok(!owner.has(seat), `seat ${seat} sold to ${owner.get(seat)} and ${id}`);
      owner.set(seat, id);
    }
  }
  const map = await store.getSeatMap(eventId);
  const soldSeats = map?.sections
    .flatMap((s) => s.rows.flatMap((r) => r.seats))
    .filter((s) => s.status === "sold");
  assert.deepEqual(
    new Set(soldSeats?.map((s) => s.id)),
    new Set(owner.keys()),
    "the seat map agrees with the orders",
  );
  assert.equal((await store.getEvent(eventId))?.sold, owner.size);
  assert.ok(owner.size > 0, "some seats were sold");
}
