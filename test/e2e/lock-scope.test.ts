/**
 * Lock scope, seen from the lock hold times of two seller processes on two different events: under
 * `event` they hold their locks at the same time; under `global` (design A's database-wide lock) never.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { planEvent } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import { lockKeyFor, type LockScope } from "../../src/lock/lock-provider.js";
import { leasingProviders, SellerFixture, type Seller } from "../support/seller-fixture.js";

type Interval = [number, number];

/** Pairs of hold intervals, one from each seller, that overlap in time. */
function overlaps(a: Interval[], b: Interval[]): number {
  let count = 0;
  for (const [startA, endA] of a) for (const [startB, endB] of b) if (startA < endB && startB < endA) count++;
  return count;
}

for (const provider of await leasingProviders("lock-scope")) {
  describe(`lock scope (${provider.name})`, { skip: provider.skip }, () => {
    let fixture: SellerFixture;
    let sellers: Seller[];
    before(async () => {
      fixture = await SellerFixture.open(provider.lock);
      sellers = await fixture.startSellers(2);
    });
    after(async () => {
      await fixture.close();
      await provider.cleanup();
    });

    const sellBoth = async (scope: LockScope) => {
      const events = await Promise.all(
        [1, 2].map((n) =>
          fixture.store.createEvent(
            planEvent({ name: `Scope ${n}`, capacity: 1000 }, newEventId(), new Date()),
          ),
        ),
      );
      const results = await Promise.all(
        sellers.map((seller, index) =>
          seller.run({
            op: "burst",
            key: lockKeyFor(scope, events[index]!.id),
            eventId: events[index]!.id,
            rounds: 12,
            batch: 2,
            leaseMs: 2000,
            waitMs: 5000,
            holdMs: 15,
          }),
        ),
      );
      for (const [index, result] of results.entries()) {
        assert.deepEqual({ sold: result.sold, errors: result.errors }, { sold: 24, errors: {} });
        assert.equal((await fixture.store.getEvent(events[index]!.id))?.sold, 24);
      }
      return overlaps(results[0]!.holds!, results[1]!.holds!);
    };

    it("under `event`, two events sell at the same time: their lock holds overlap", async () => {
      assert.ok((await sellBoth("event")) > 0, "the two events never held their locks at the same time");
    });

    it("under `global`, their lock holds never overlap", async () => {
      assert.equal(await sellBoth("global"), 0);
    });
  });
}
