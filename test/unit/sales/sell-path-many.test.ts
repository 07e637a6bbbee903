/**
 * The sell path with a store that commits several events at once (Store.executeMany): what arrives for
 * different events in one tick goes to the store in one call, each event under its own lock, all taken
 * in one withLocks; a busy lock's work is put back and tried again (never waited for while the others
 * are held) until the lock wait is over, and a failed part fails only its own buyers. A recording store and
 * lock stand in here; the real stores' rules are tested by the store contract and the e2e suites.
 */
import { describe, it } from "node:test";
import assert from "node:assert/strict";
import type { Command, Outcome } from "../../../src/domain/sale.js";
import { LockBusyError, LockUnavailableError } from "../../../src/domain/lock-errors.js";
import type {
  LockOptions,
  LockProvider,
  ManyLockOptions,
  ManyLockWork,
} from "../../../src/lock/lock-provider.js";
import { SellPath } from "../../../src/sales/sell-path.js";
import type { EventBatch, EventBatchResult, Store } from "../../../src/store/store.js";
import type { WriteGuard } from "../../../src/domain/write-guard.js";
import { FencedOutError } from "../../../src/store/store-errors.js";

const E1 = "evt_01JDZ4K8Q0ABCDEFGHJKMNPQR1";
const E2 = "evt_01JDZ4K8Q0ABCDEFGHJKMNPQR2";
const E3 = "evt_01JDZ4K8Q0ABCDEFGHJKMNPQR3";

/** Records each executeMany call; a customer "no" is refused, an event in `failing` fails its part. */
function recordingStore(failing: ReadonlySet<string> = new Set()) {
  const calls: { eventId: string; customers: string[]; lockKey: string | undefined }[][] = [];
  let gate: Promise<void> = Promise.resolve();
  let openGate = () => {};
  const store = {
    async getEvent(eventId: string) {
      return { id: eventId };
    },
    async execute(): Promise<Outcome[]> {
      throw new Error("execute() must not be called when executeMany is there");
    },
    async executeMany(batches: readonly EventBatch[]): Promise<EventBatchResult[]> {
      calls.push(
        batches.map((batch) => ({
          eventId: batch.eventId,
          customers: batch.commands.map((c) => (c.type === "purchase" ? c.customerId : c.type)),
          lockKey: batch.guard?.lockKey,
        })),
      );
      await gate;
      return batches.map((batch): EventBatchResult => {
        if (failing.has(batch.eventId)) return { ok: false, error: new FencedOutError("k", 1, 2) };
        return {
          ok: true,
          outcomes: batch.commands.map((c) =>
            c.type === "purchase" && c.customerId === "no"
              ? { ok: false, refusal: { code: "sold_out", detail: "none left" }, replayed: false }
              : { ok: true, value: null, replayed: false },
          ),
        };
      });
    },
  } as unknown as Store;
  return {
    store,
    calls,
    shut: () => (gate = new Promise((resolve) => (openGate = resolve))),
    open: () => openGate(),
  };
}

/**
 * Records the keys in the order they were asked for and which were held together. Refuses `refuse` as
 * busy always, a key in `busyFor` as busy that many more times, and a key in `failWith` with its error.
 */
class RecordingLock implements LockProvider {
  readonly kind = "recording";
  readonly asked: string[] = [];
  /** The keys of each withLocks call, in the order given. */
  readonly askedTogether: string[][] = [];
  readonly refuse = new Set<string>();
  readonly busyFor = new Map<string, number>();
  readonly failWith = new Map<string, Error>();
  held = new Set<string>();
  /** The keys held at once, at each grant. */
  readonly together: string[][] = [];
  async init(): Promise<void> {}
  async close(): Promise<void> {}
  async ping(): Promise<void> {}
  async withLock<T>(key: string, options: LockOptions, work: (guard: WriteGuard) => Promise<T>): Promise<T> {
    this.asked.push(key);
    await Promise.resolve();
    if (this.refuse.has(key)) throw new LockBusyError(key, options.waitMs);
    assert.ok(!this.held.has(key), `${key} is not held twice`);
    this.held.add(key);
    this.together.push([...this.held]);
    try {
      return await work({ lockKey: key, fence: 1, signal: new AbortController().signal });
    } finally {
      this.held.delete(key);
    }
  }
  async withLocks<T>(keys: readonly string[], options: ManyLockOptions, work: ManyLockWork<T>): Promise<T> {
    this.askedTogether.push([...keys]);
    await Promise.resolve();
    const granted = new Map<string, WriteGuard>();
    const refused = new Map<string, Error>();
    for (const key of keys) {
      const busyFor = this.busyFor.get(key) ?? 0;
      if (busyFor > 0) this.busyFor.set(key, busyFor - 1);
      const failure = this.failWith.get(key);
      if (failure) refused.set(key, failure);
      else if (this.refuse.has(key) || busyFor > 0) refused.set(key, new LockBusyError(key, 0));
      else {
        assert.ok(!this.held.has(key), `${key} is not held twice`);
        this.held.add(key);
        granted.set(key, { lockKey: key, fence: 1, signal: new AbortController().signal });
      }
    }
    this.together.push([...this.held]);
    assert.ok(options.leaseMs > 0);
    try {
      return await work(granted, refused);
    } finally {
      for (const key of granted.keys()) this.held.delete(key);
    }
  }
}

/** A RecordingLock that tells of releases (LockProvider.onReleased) when the test says so. */
class NotifyingLock extends RecordingLock {
  readonly #listeners = new Map<string, Set<() => void>>();
  /** Called inside withLocks, after the keys were answered and before the work runs. */
  duringAsk: (() => void) | null = null;
  onReleased(key: string, listener: () => void): () => void {
    const listeners = this.#listeners.get(key) ?? new Set();
    this.#listeners.set(key, listeners);
    listeners.add(listener);
    return () => listeners.delete(listener);
  }
  notify(key: string): void {
    for (const listener of this.#listeners.get(key) ?? []) listener();
  }
  listening(key: string): number {
    return this.#listeners.get(key)?.size ?? 0;
  }
  override async withLocks<T>(
    keys: readonly string[],
    options: ManyLockOptions,
    work: ManyLockWork<T>,
  ): Promise<T> {
    return super.withLocks(keys, options, (granted, refused) => {
      this.duringAsk?.();
      return work(granted, refused);
    });
  }
}

const purchase = (customerId: string): Command => ({
  type: "purchase",
  customerId,
  selection: { quantity: 1, seats: null },
  idempotency: null,
});

function sellPath(
  store: Store,
  lock: LockProvider,
  limits: {
    maxBatch?: number;
    scope?: "event" | "global";
    maxEventsPerTick?: number;
    lockWaitMs?: number;
    busyRetryMs?: number;
  } = {},
) {
  return new SellPath({
    store,
    lock,
    lockScope: limits.scope ?? "event",
    lockLeaseMs: 1000,
    lockWaitMs: limits.lockWaitMs ?? 100,
    maxBatch: limits.maxBatch ?? 256,
    maxEventsPerTick: limits.maxEventsPerTick,
    firstBusyRetryMs: limits.busyRetryMs,
    maxBusyRetryMs: limits.busyRetryMs,
    maxQueuePerEvent: 1000,
    maxQueueTotal: 1000,
  });
}

describe("sell path (several events per commit)", () => {
  it("commits what arrives together for several events in one call, locks taken in one withLocks", async () => {
    const { store, calls } = recordingStore();
    const lock = new RecordingLock();
    const path = sellPath(store, lock);
    const outcomes = await Promise.all([
      path.submit(E3, purchase("c1")),
      path.submit(E1, purchase("a1")),
      path.submit(E3, purchase("no")),
      path.submit(E2, purchase("b1")),
      path.submit(E1, purchase("a2")),
    ]);
    assert.deepEqual(
      outcomes.map((o) => o.ok),
      [true, true, false, true, true],
    );
    assert.equal(calls.length, 1, "one store call");
    assert.deepEqual(
      calls[0]?.map((part) => [part.eventId, part.customers, part.lockKey]),
      [
        [E3, ["c1", "no"], `event:${E3}`],
        [E1, ["a1", "a2"], `event:${E1}`],
        [E2, ["b1"], `event:${E2}`],
      ],
    );
    assert.deepEqual(lock.askedTogether, [[`event:${E1}`, `event:${E2}`, `event:${E3}`]]);
    assert.deepEqual(lock.asked, [], "no key taken on its own");
    assert.deepEqual(lock.together.at(-1), [`event:${E1}`, `event:${E2}`, `event:${E3}`]);
    await path.close();
  });

  it("fails only the buyers of an event whose lock stays busy or whose part the store refuses", async () => {
    const { store, calls } = recordingStore(new Set([E3]));
    const lock = new RecordingLock();
    lock.refuse.add(`event:${E1}`);
    const path = sellPath(store, lock);
    const results = await Promise.allSettled([
      path.submit(E1, purchase("a")),
      path.submit(E2, purchase("b")),
      path.submit(E3, purchase("c")),
    ]);
    assert.equal(results[0]?.status, "rejected");
    assert.ok(results[0]?.status === "rejected" && results[0].reason instanceof LockBusyError);
    assert.ok(results[1]?.status === "fulfilled" && results[1].value.ok);
    assert.ok(results[2]?.status === "rejected" && results[2].reason instanceof FencedOutError);
    assert.deepEqual(
      calls.map((call) => call.map((part) => part.eventId)),
      [[E2, E3]],
      "the refused event never reached the store",
    );
    await path.close();
  });

  it("puts a busy event's work back at the front of its queue and commits it once its lock is free", async () => {
    const { store, calls } = recordingStore();
    const lock = new RecordingLock();
    lock.busyFor.set(`event:${E1}`, 2);
    const path = sellPath(store, lock, { lockWaitMs: 5000 });
    const first = [path.submit(E1, purchase("a1")), path.submit(E1, purchase("a2"))];
    const other = path.submit(E2, purchase("b1"));
    // E2 does not wait for E1's lock: it commits in the first tick, while E1's work waits.
    assert.equal((await other).ok, true);
    assert.deepEqual(
      calls.map((call) => call.map((part) => part.customers)),
      [[["b1"]]],
    );
    const later = path.submit(E1, purchase("a3"));
    assert.deepEqual(
      (await Promise.all([...first, later])).map((o) => o.ok),
      [true, true, true],
    );
    const e1Asks = lock.askedTogether.filter((keys) => keys.includes(`event:${E1}`));
    assert.equal(e1Asks.length, 3, "asked again after each busy answer, granted at the third");
    assert.deepEqual(
      calls.at(-1)?.map((part) => [part.eventId, part.customers]),
      [[E1, ["a1", "a2", "a3"]]],
      "the put-back work stays first, in order, and what came later joins behind it",
    );
    assert.ok(
      lock.askedTogether.every((keys) => new Set(keys).size === keys.length),
      "no key asked twice in one call",
    );
    await path.close();
  });

  it("serves a quiet event at once while another event's work waits for its busy lock", async () => {
    const { store, calls } = recordingStore();
    const lock = new RecordingLock();
    lock.refuse.add(`event:${E1}`);
    const path = sellPath(store, lock, { lockWaitMs: 60_000 });
    const waiting = path.submit(E1, purchase("a"));
    waiting.catch(() => undefined);
    while (lock.askedTogether.length < 2) await new Promise((resolve) => setTimeout(resolve, 1));
    assert.equal((await path.submit(E2, purchase("b"))).ok, true);
    assert.equal((await path.submit(E3, purchase("c"))).ok, true);
    assert.deepEqual(
      calls.map((call) => call.map((part) => part.eventId)),
      [[E2], [E3]],
    );
    lock.refuse.clear();
    assert.equal((await waiting).ok, true);
    await path.close();
  });

  it("fails busy work with LOCK_BUSY only once the lock wait has passed since it was first asked for", async () => {
    const { store, calls } = recordingStore();
    const lock = new RecordingLock();
    lock.refuse.add(`event:${E1}`);
    const lockWaitMs = 150;
    const path = sellPath(store, lock, { lockWaitMs });
    const startedMs = performance.now();
    const answer = path.submit(E1, purchase("a")).then(
      () => assert.fail("a purchase under a busy lock succeeded"),
      (error: unknown) => ({ error, afterMs: performance.now() - startedMs }),
    );
    // A purchase that joins later waits its own full time: it is still queued when the first one fails.
    await new Promise((resolve) => setTimeout(resolve, lockWaitMs / 2));
    let lateSettled = false;
    const late = path.submit(E1, purchase("late")).then(
      () => assert.fail("a purchase under a busy lock succeeded"),
      (error: unknown) => {
        lateSettled = true;
        return { error, afterMs: performance.now() - startedMs };
      },
    );
    const first = await answer;
    assert.ok(first.error instanceof LockBusyError);
    assert.equal((first.error as LockBusyError).code, "LOCK_BUSY");
    assert.ok(first.afterMs >= lockWaitMs, `failed after ${first.afterMs} ms, before the wait was over`);
    assert.ok(lock.askedTogether.length >= 3, "tried again while the wait lasted");
    assert.equal(lateSettled, false, "the later purchase is still waiting");
    const second = await late;
    assert.ok(second.error instanceof LockBusyError);
    assert.ok(second.afterMs >= lockWaitMs * 1.5, `the later one failed after ${second.afterMs} ms`);
    assert.equal(calls.length, 0, "nothing reached the store");
    await path.close();
  });

  it("fails at once, without trying again, when the lock answers other than busy", async () => {
    const { store } = recordingStore();
    const lock = new RecordingLock();
    lock.failWith.set(`event:${E1}`, new LockUnavailableError("down"));
    const path = sellPath(store, lock, { lockWaitMs: 60_000 });
    await assert.rejects(path.submit(E1, purchase("a")), { code: "LOCK_UNAVAILABLE" });
    assert.equal(lock.askedTogether.length, 1);
    await path.close();
  });

  it("tries a busy event again as soon as its key is released, not at the end of its backoff", async () => {
    const { store, calls } = recordingStore();
    const lock = new NotifyingLock();
    const key = `event:${E1}`;
    lock.refuse.add(key);
    // A ten-minute backoff: only the release notification can bring the second ask before the test ends.
    const path = sellPath(store, lock, { lockWaitMs: 3_600_000, busyRetryMs: 600_000 });
    const pending = path.submit(E1, purchase("a"));
    while (lock.listening(key) === 0) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(lock.askedTogether.length, 1, "asked once, then backing off");
    lock.refuse.delete(key);
    lock.notify(key);
    assert.equal((await pending).ok, true);
    assert.equal(lock.askedTogether.length, 2, "granted at the first ask after the release");
    assert.equal(calls.length, 1);
    await path.close();
    assert.equal(lock.listening(key), 0, "the subscription ends with the event's work");
  });

  it("tries again at once when the release was heard while its ask was on its way", async () => {
    const { store } = recordingStore();
    const lock = new NotifyingLock();
    const key = `event:${E1}`;
    // The first tick subscribes (busy); the second tick's ask is refused, but the key is released
    // before that answer is handled: the third ask follows without the ten-minute backoff.
    lock.busyFor.set(key, 2);
    const path = sellPath(store, lock, { lockWaitMs: 3_600_000, busyRetryMs: 600_000 });
    const pending = path.submit(E1, purchase("a"));
    while (lock.listening(key) === 0) await new Promise((resolve) => setImmediate(resolve));
    lock.duringAsk = () => {
      lock.duringAsk = null;
      lock.notify(key);
    };
    lock.notify(key);
    assert.equal((await pending).ok, true);
    assert.equal(lock.askedTogether.length, 3);
    await path.close();
  });

  it("close() waits for work that is backing off from a busy lock", async () => {
    const { store } = recordingStore();
    const lock = new RecordingLock();
    lock.busyFor.set(`event:${E1}`, 3);
    const path = sellPath(store, lock, { lockWaitMs: 5000 });
    const pending = path.submit(E1, purchase("a"));
    while (lock.askedTogether.length < 1) await new Promise((resolve) => setImmediate(resolve));
    await path.close();
    assert.equal((await pending).ok, true);
  });

  it("while a tick is in the store, queues what arrives for the next tick, every event's work together", async () => {
    const { store, calls, shut, open } = recordingStore();
    const lock = new RecordingLock();
    const path = sellPath(store, lock);
    shut();
    const first = path.submit(E1, purchase("a1"));
    while (calls.length < 1) await new Promise((resolve) => setImmediate(resolve));
    const later = [path.submit(E1, purchase("a2")), path.submit(E2, purchase("b1"))];
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
    assert.equal(calls.length, 1, "nothing else went to the store while the first tick was there");
    assert.equal(path.queued, 2);
    open();
    await Promise.all([first, ...later]);
    assert.deepEqual(
      calls.map((call) => call.map((part) => part.customers)),
      [[["a1"]], [["a2"], ["b1"]]],
    );
    await path.close();
  });

  it("takes one lock for the whole tick in the global scope", async () => {
    const { store, calls } = recordingStore();
    const lock = new RecordingLock();
    const path = sellPath(store, lock, { scope: "global" });
    await Promise.all([path.submit(E2, purchase("b")), path.submit(E1, purchase("a"))]);
    assert.deepEqual(lock.asked, ["global"]);
    assert.deepEqual(
      calls.map((call) => call.map((part) => [part.eventId, part.lockKey])),
      [
        [
          [E2, "global"],
          [E1, "global"],
        ],
      ],
    );
    await path.close();
  });

  it("caps the events and commands of a tick; events past the cap go first in the next", async () => {
    const { store, calls } = recordingStore();
    const path = sellPath(store, new RecordingLock(), { maxEventsPerTick: 2, maxBatch: 2 });
    await Promise.all([
      ...["a1", "a2", "a3"].map((c) => path.submit(E1, purchase(c))),
      path.submit(E2, purchase("b1")),
      path.submit(E3, purchase("c1")),
    ]);
    assert.deepEqual(
      calls.map((call) => call.map((part) => part.customers)),
      [
        [["a1", "a2"], ["b1"]],
        [["c1"], ["a3"]],
      ],
    );
    await path.close();
  });

  it("answers everything queued before close, then refuses", async () => {
    const { store, shut, open } = recordingStore();
    const path = sellPath(store, new RecordingLock(), { maxBatch: 1 });
    await path.submit(E1, purchase("known")); // E1 is known from now on: its submits queue at once
    shut();
    const pending = ["a", "b", "c"].map((c) => path.submit(E1, purchase(c)));
    const closing = path.close();
    open();
    await closing;
    assert.deepEqual(
      (await Promise.all(pending)).map((o) => o.ok),
      [true, true, true],
    );
    await assert.rejects(path.submit(E2, purchase("late")), { code: "SHUTTING_DOWN" });
  });
});
