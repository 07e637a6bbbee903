/**
 * The batching of the sell path (group commit), with a recording store: which commands share a batch,
 * that each caller gets its own outcome, that a retryable failure fails exactly its batch, and the
 * admission limits. The real store's rules are tested by the store contract and the e2e suites.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Command, Outcome } from "../../../src/domain/sale.js";
import { LockBusyError } from "../../../src/domain/lock-errors.js";
import { SellPath, SellPathClosedError, SellPathOverloadedError } from "../../../src/sales/sell-path.js";
import type { Store } from "../../../src/store/store.js";
import type { WriteGuard } from "../../../src/domain/write-guard.js";
import { StoreUnavailableError } from "../../../src/store/store-errors.js";
import { GateLock } from "../../support/gate-lock.js";

/** Well-formed event ids: the sell path refuses others before anything. */
const E1 = "evt_01JDZ4K8Q0ABCDEFGHJKMNPQR1";
const E2 = "evt_01JDZ4K8Q0ABCDEFGHJKMNPQR2";
const E3 = "evt_01JDZ4K8Q0ABCDEFGHJKMNPQR3";

/**
 * Records each batch; answers every command ok with its customer id as value, or refuses "no". Every
 * event exists except those in `missing`; `lookups` counts the existence questions per id.
 */
function recordingStore(missing: ReadonlySet<string> = new Set()) {
  const batches: { eventId: string; customers: string[]; lockKey: string | undefined }[] = [];
  const lookups = new Map<string, number>();
  const store = {
    async getEvent(eventId: string) {
      lookups.set(eventId, (lookups.get(eventId) ?? 0) + 1);
      return missing.has(eventId) ? null : { id: eventId };
    },
    async execute(
      eventId: string,
      commands: readonly Command[],
      guard: WriteGuard | null,
    ): Promise<Outcome[]> {
      const customers = commands.map((c) => (c.type === "purchase" ? c.customerId : c.type));
      batches.push({ eventId, customers, lockKey: guard?.lockKey });
      return customers.map((customer) =>
        customer === "no"
          ? { ok: false, refusal: { code: "sold_out", detail: "none left" }, replayed: false }
          : { ok: true, value: null, replayed: false },
      );
    },
  } as unknown as Store;
  return { store, batches, lookups };
}

const purchase = (customerId: string): Command => ({
  type: "purchase",
  customerId,
  selection: { quantity: 1, seats: null },
  idempotency: null,
});

function sellPath(
  store: Store,
  lock: GateLock,
  limits: { maxBatch?: number; perEvent?: number; total?: number; scope?: "event" | "global" } = {},
) {
  return new SellPath({
    store,
    lock,
    lockScope: limits.scope ?? "event",
    lockLeaseMs: 1000,
    lockWaitMs: 100,
    maxBatch: limits.maxBatch ?? 256,
    maxQueuePerEvent: limits.perEvent ?? 1000,
    maxQueueTotal: limits.total ?? 1000,
  });
}

describe("sell path (group commit)", () => {
  it("puts what arrives together in one batch, and what arrives during it in the next", async () => {
    const { store, batches } = recordingStore();
    const lock = new GateLock();
    const path = sellPath(store, lock);
    lock.shut();
    const first = ["a", "b", "no"].map((c) => path.submit(E1, purchase(c)));
    await lock.enteredAtLeast(1);
    const second = ["d", "e"].map((c) => path.submit(E1, purchase(c)));
    assert.equal(path.queued, 2);
    lock.open();
    const outcomes = await Promise.all([...first, ...second]);
    assert.deepEqual(
      batches.map((b) => b.customers),
      [
        ["a", "b", "no"],
        ["d", "e"],
      ],
    );
    assert.deepEqual(
      outcomes.map((o) => o.ok),
      [true, true, false, true, true],
    );
    assert.equal(batches[0]?.lockKey, `event:${E1}`);
    await path.close();
  });

  it("caps a batch at maxBatch and keeps events apart", async () => {
    const { store, batches } = recordingStore();
    const path = sellPath(store, new GateLock(), { maxBatch: 2 });
    await Promise.all([
      ...["a", "b", "c", "d", "e"].map((c) => path.submit(E1, purchase(c))),
      path.submit(E2, purchase("x")),
    ]);
    const ofOne = batches.filter((b) => b.eventId === E1).map((b) => b.customers);
    assert.deepEqual(ofOne, [["a", "b"], ["c", "d"], ["e"]]);
    assert.deepEqual(
      batches.filter((b) => b.eventId === E2).map((b) => b.customers),
      [["x"]],
    );
    await path.close();
  });

  it("with the global scope, queues a second event's batch here instead of asking the lock twice", async () => {
    const { store, batches } = recordingStore();
    const lock = new GateLock();
    const path = sellPath(store, lock, { scope: "global" });
    lock.shut();
    const first = path.submit(E1, purchase("a"));
    await lock.enteredAtLeast(1);
    const second = path.submit(E2, purchase("b"));
    await new Promise((resolve) => setTimeout(resolve, 20));
    assert.equal(lock.entered, 1, "the second batch waits in this process");
    lock.open();
    await Promise.all([first, second]);
    assert.equal(lock.entered, 2);
    assert.deepEqual(
      batches.map((b) => [b.eventId, b.lockKey]),
      [
        [E1, "global"],
        [E2, "global"],
      ],
    );
    await path.close();
  });

  it("fails the whole batch, and only it, when the lock refuses", async () => {
    const { store, batches } = recordingStore();
    const lock = new GateLock();
    const path = sellPath(store, lock);
    lock.failWith = new LockBusyError(`event:${E1}`, 100);
    const failed = await Promise.allSettled(["a", "b"].map((c) => path.submit(E1, purchase(c))));
    for (const result of failed) {
      assert.equal(result.status, "rejected");
      assert.ok(result.reason instanceof LockBusyError);
    }
    lock.failWith = null;
    assert.equal((await path.submit(E1, purchase("c"))).ok, true);
    assert.deepEqual(
      batches.map((b) => b.customers),
      [["c"]],
    );
    await path.close();
  });

  it("refuses beyond the per-event and total queue limits, and after close", async () => {
    const { store } = recordingStore();
    const lock = new GateLock();
    const path = sellPath(store, lock, { perEvent: 2, total: 3 });
    lock.shut();
    const running = path.submit(E1, purchase("running"));
    await lock.enteredAtLeast(1);
    const queued = [path.submit(E1, purchase("q1")), path.submit(E1, purchase("q2"))];
    await assert.rejects(path.submit(E1, purchase("q3")), SellPathOverloadedError);
    queued.push(path.submit(E2, purchase("other")));
    await assert.rejects(path.submit(E3, purchase("q4")), SellPathOverloadedError);
    lock.open();
    await Promise.all([running, ...queued]);
    await path.close();
    await assert.rejects(path.submit(E1, purchase("late")), SellPathClosedError);
  });

  it("refuses an unknown or malformed event id with event_not_found and never asks the lock", async () => {
    const { store, batches, lookups } = recordingStore(new Set([E2]));
    const lock = new GateLock();
    const path = sellPath(store, lock);
    for (const eventId of [E2, E2, "evt_1", "nonsense", `${E1}x`]) {
      const outcome = await path.submit(eventId, purchase("a"));
      assert.equal(outcome.ok ? "ok" : outcome.refusal.code, "event_not_found", eventId);
    }
    assert.equal(lock.entered, 0, "no lock was asked for");
    assert.deepEqual(batches, []);
    // Malformed ids are refused without asking the store; an unknown one is asked about every time.
    assert.deepEqual([...lookups], [[E2, 2]]);
    await path.close();
  });

  it("asks the store once about an event that exists, however many requests come for it", async () => {
    const { store, lookups } = recordingStore();
    const path = sellPath(store, new GateLock());
    await Promise.all(["a", "b", "c"].map((c) => path.submit(E1, purchase(c))));
    assert.equal((await path.submit(E1, purchase("d"))).ok, true);
    assert.deepEqual([...lookups], [[E1, 1]]);
    await path.close();
  });

  it("answers a failed existence question as the store failed, and asks again next time", async () => {
    const { store, lookups } = recordingStore();
    const getEvent = store.getEvent.bind(store);
    let failing = true;
    store.getEvent = async (eventId) => {
      if (failing) throw new StoreUnavailableError("the store does not answer");
      return getEvent(eventId);
    };
    const path = sellPath(store, new GateLock());
    await assert.rejects(path.submit(E1, purchase("a")), { code: "STORE_UNAVAILABLE" });
    failing = false;
    assert.equal((await path.submit(E1, purchase("b"))).ok, true);
    assert.deepEqual([...lookups], [[E1, 1]]);
    await path.close();
  });
});
