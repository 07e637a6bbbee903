import { describe, it } from "node:test";
import assert from "node:assert/strict";
import {
  eventIdOfHold,
  eventIdOfOrder,
  isEventId,
  newEventId,
  newHoldId,
  newOrderId,
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

  it("sorts by creation time", () => {
    const earlier = ulid(1_700_000_000_000);
    const later = ulid(1_700_000_000_001);
    assert.ok(earlier < later);
    assert.equal(earlier.length, 26);
  });
});
