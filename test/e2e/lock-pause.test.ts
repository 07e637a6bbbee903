/**
 * A holder paused past its lease (SIGSTOP) while another process takes the lock and sells; when it
 * resumes (SIGCONT), its write is refused — by its aborted signal, or, if it did not notice (a pause
 * between the store's last signal check and its commit), by the fence — and nothing is oversold.
 * Sellers are real processes writing through the SQLite store, each with its own lock provider.
 */
import { after, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { setTimeout as sleep } from "node:timers/promises";
import { planEvent } from "../../src/domain/event.js";
import { newEventId } from "../../src/domain/ids.js";
import { lockKeyFor } from "../../src/lock/lock-provider.js";
import { leasingProviders, SellerFixture } from "../support/seller-fixture.js";

for (const provider of await leasingProviders("lock-pause")) {
  describe(`a paused lock holder (${provider.name})`, { skip: provider.skip }, () => {
    let fixture: SellerFixture;
    before(async () => {
      fixture = await SellerFixture.open(provider.lock);
    });
    after(async () => {
      await fixture.close();
      await provider.cleanup();
    });

    for (const blind of [false, true]) {
      const how = blind ? "did not notice and is stopped by the fence" : "is told through its signal";
      it(`${how}; nothing is oversold`, async () => {
        const capacity = 10;
        const event = await fixture.store.createEvent(
          planEvent({ name: "Pause", capacity }, newEventId(), new Date()),
        );
        const key = lockKeyFor("event", event.id);
        const paused = await fixture.startSeller();
        const other = await fixture.startSeller();
        const leaseMs = 300;

        // 4 + 8 > 10: the late write must be refused, though on its own it would fit.
        const lateId = paused.send({
          op: "buy",
          key,
          eventId: event.id,
          quantity: 4,
          leaseMs,
          waitMs: 1000,
          waitForGo: true,
          blind,
        });
        const late = await paused.next(lateId, "acquired");
        paused.process.kill("SIGSTOP");
        await sleep(leaseMs * 2);

        const onTime = await other.run({
          op: "buy",
          key,
          eventId: event.id,
          quantity: 8,
          leaseMs: 5000,
          waitMs: 3000,
          waitForGo: false,
          blind: false,
        });
        assert.deepEqual({ ok: onTime.ok, sold: onTime.sold }, { ok: true, sold: 8 });

        paused.process.kill("SIGCONT");
        paused.send({ op: "go", buyId: lateId });
        const refused = await paused.next(lateId, "done");
        assert.equal(refused.ok, false);
        if (blind) assert.equal(refused.code, "STALE_FENCE");
        else assert.ok(["LOCK_LOST", "STALE_FENCE"].includes(refused.code!), refused.code);
        assert.ok(late.fence !== null);

        const final = await fixture.store.getEvent(event.id);
        assert.equal(final?.sold, 8);
        assert.ok(final.sold + final.held <= capacity);
      });
    }
  });
}
