/**
 * The checks every cross-process oversell test makes, whatever the store: the event sold exactly its
 * capacity, the confirmed answers and the stored orders add up to it, and no seat is in two orders.
 */
import assert from "node:assert/strict";
import type { Store } from "../../src/store/store.js";

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
