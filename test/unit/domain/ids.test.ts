import { describe, it } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import {
  eventIdOfHold,
  eventIdOfOrder,
  isEventId,
  newEventId,
  newHoldId,
  newOrderId,
  orderIdRange,
  ulid,
} from "../../../src/domain/ids.js";

describe("ids", () => {
  it("carries the event id inside order and hold ids", () => {
    const eventId = newEventId();
    assert.ok(isEventId(eventId));
    assert.equal(eventIdOfOrder(newOrderId(eventId)), eventId);
    assert.equal(eventIdOfHold(newHoldId(eventId)), eventId);
  });

  it("does not mistake one kind of id for another, or junk for an id", () => {
    const eventId = newEventId();
    assert.equal(eventIdOfOrder(newHoldId(eventId)), null);
    assert.equal(eventIdOfHold(newOrderId(eventId)), null);
    for (const junk of [
      "",
      "ord_",
      "ord_x_y",
      "../etc/passwd",
      `${newOrderId(eventId)}x`,
      "evt_" + "I".repeat(26),
    ]) {
      assert.equal(eventIdOfOrder(junk), null, junk);
      assert.equal(isEventId(junk), false, junk);
    }
  });

  it("bounds an event's order ids in byte order, and no other event's (the order list reads that range)", () => {
    const CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    const ulidOf = fc.string({ unit: fc.constantFrom(...CROCKFORD), minLength: 26, maxLength: 26 });
    fc.assert(
      fc.property(ulidOf, ulidOf, ulidOf, fc.nat(2 ** 40), (event, other, random, ms) => {
        const eventId = `evt_${event}`;
        const { after, before } = orderIdRange(eventId);
        // Its own orders, made at any time, with any random part.
        for (const orderId of [newOrderId(eventId, ms), `ord_${event}_${random}`]) {
          assert.ok(after < orderId && orderId < before, orderId);
        }
        // Another event's orders and holds, and this event's holds, fall outside.
        const outside = [`ord_${other}_${random}`, `hld_${event}_${random}`];
        for (const id of outside) {
          if (id.startsWith(after)) continue; // the same event drawn twice
          assert.ok(id < after || id >= before, id);
        }
      }),
    );
  });

  it("sorts by creation time", () => {
    const earlier = ulid(1_700_000_000_000);
    const later = ulid(1_700_000_000_001);
    assert.ok(earlier < later);
    assert.equal(earlier.length, 26);
  });
});
