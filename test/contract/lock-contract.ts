/**
 * The one lock contract, run against every provider (kysely-style: `describeLockContract(name, setup)`).
 * Exclusion is checked across real OS processes; leases are lost by really stopping a holder (SIGSTOP)
 * past its lease, never by faking a clock.
 */
import { after, afterEach, before, describe, it } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { createLockProvider } from "../../src/lock/create-lock-provider.js";
import type { LockProvider } from "../../src/lock/lock-provider.js";
import { guardedSection, guardedSections } from "../support/guarded-section.js";
import { fileURLToPath } from "node:url";
import type { ChildMessage, ChildRequest, ChildSetup } from "../support/lock-child.js";
import { ForkedChild } from "../support/forked-child.js";

type LockChild = ForkedChild<ChildRequest, ChildMessage>;
const LOCK_CHILD = fileURLToPath(new URL("../support/lock-child.js", import.meta.url));

/**
 * What a provider promises. Only the tests of its promises are registered: a test of a promise it does not
 * make is not a skip, it does not exist for that provider. A skip is only for a missing backend service.
 */
export interface LockCapabilities {
  /** Set when the backend is missing: the whole suite is skipped with this reason. */
  skip?: string | undefined;
  /** Holders exclude each other (false only for the "none" baseline). */
  excludes: boolean;
  /** The lock has a lease that runs out when its holder stops (false for postgres: the transaction holds it). */
  leases: boolean;
  /** The lock issues fencing tokens. */
  fences: boolean;
}

export interface LockContractSetup extends ChildSetup {
  /** Removes what the setup created (key prefixes, directories). */
  cleanup(): Promise<void>;
  /**
   * For leasing providers: makes another owner hold `key` in the backend for a minute, as a holder does
   * that took the key after this one's lease ran out, so that this one's next renewal finds it gone.
   */
  takeOver?(key: string): Promise<void>;
}

const codeOf = (error: unknown): unknown => (error as { code?: unknown }).code;

export function describeLockContract(
  name: string,
  capabilities: LockCapabilities,
  makeSetup: () => Promise<LockContractSetup>,
): void {
  describe(`lock contract: ${name}`, { skip: capabilities.skip }, () => {
    let setup: LockContractSetup;
    let provider: LockProvider;
    let children: LockChild[] = [];
    let keyNumber = 0;
    /** Every test uses fresh keys, so that one test's leftovers cannot help or hurt the next. */
    const freshKey = (): string => `event:contract-${process.pid}-${Date.now()}-${keyNumber++}`;
    const startChild = async (): Promise<LockChild> => {
      const child = await ForkedChild.start<ChildRequest, ChildMessage>(LOCK_CHILD, {
        config: setup.config,
        context: setup.context,
        postgresUrl: setup.postgresUrl,
      });
      children.push(child);
      return child;
    };
    const hold = <T>(
      key: string,
      leaseMs: number,
      waitMs: number,
      section: (signal: AbortSignal) => Promise<T>,
    ) =>
      provider.withLock(key, { leaseMs, waitMs }, (guard) =>
        guardedSection(guard, setup.postgresUrl, () => section(guard.signal)),
      );

    before(async () => {
      setup = await makeSetup();
      provider = await createLockProvider(setup.config, setup.context);
      await provider.init();
    });
    afterEach(async () => {
      await Promise.all(children.map((child) => child.stop()));
      children = [];
    });
    after(async () => {
      await provider?.close();
      await setup?.cleanup();
    });

    it("answers ping", async () => {
      await provider.ping();
    });

    it("passes the work's own error through and frees the lock", async () => {
      const key = freshKey();
      const mine = new Error("the work failed");
      await assert.rejects(
        provider.withLock(key, { leaseMs: 2000, waitMs: 500 }, async () => {
          throw mine;
        }),
        (error) => error === mine,
      );
      assert.equal(await hold(key, 2000, 100, async () => "again"), "again");
    });

    if (capabilities.excludes) {
      it("excludes holders in several processes", async () => {
        const key = freshKey();
        const dir = mkdtempSync(join(os.tmpdir(), "boxoffice-lock-contract-"));
        try {
          writeFileSync(join(dir, "counter"), "0");
          writeFileSync(join(dir, "fences"), "");
          const workers = await Promise.all([startChild(), startChild(), startChild()]);
          const iterations = 15;
          const results = await Promise.all(
            workers.map((child) =>
              child.run({ op: "count", key, leaseMs: 2000, waitMs: 10_000, iterations, dir }),
            ),
          );
          for (const result of results)
            assert.deepEqual({ ok: result.ok, violations: result.violations }, { ok: true, violations: 0 });
          assert.equal(Number(readFileSync(join(dir, "counter"), "utf8")), workers.length * iterations);
          if (capabilities.fences) {
            const fences = readFileSync(join(dir, "fences"), "utf8").trim().split("\n").map(Number);
            for (let i = 1; i < fences.length; i++)
              assert.ok(fences[i]! > fences[i - 1]!, `fence ${i} did not grow`);
          }
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      });

      it("gives up with LOCK_BUSY when the wait runs out, and takes the lock once it is free", async () => {
        const key = freshKey();
        const holder = await startChild();
        const id = holder.send({ op: "hold", key, leaseMs: 5000, waitMs: 1000 });
        await holder.next(id, "acquired");
        await assert.rejects(
          hold(key, 1000, 150, async () => "never"),
          (error) => codeOf(error) === "LOCK_BUSY",
        );
        holder.send({ op: "release", holdId: id });
        assert.equal((await holder.next(id, "done")).ok, true);
        assert.equal(await hold(key, 1000, 1000, async () => "mine"), "mine");
      });

      it("keeps a job that outlives its lease safe by renewing it", async () => {
        const key = freshKey();
        const rival = await startChild();
        const leaseMs = 300;
        const result = await hold(key, leaseMs, 1000, async (signal) => {
          // Five leases long; a rival keeps trying all along and must never get in.
          for (let i = 0; i < 5; i++) {
            const attempt = await rival.run({ op: "try", key, leaseMs, waitMs: leaseMs });
            assert.equal(attempt.code, "LOCK_BUSY", `attempt ${i}`);
            assert.equal(signal.aborted, false);
          }
          return "finished";
        });
        assert.equal(result, "finished");
        assert.equal((await rival.run({ op: "try", key, leaseMs, waitMs: 1000 })).ok, true);
      });
    }

    if (capabilities.leases) {
      it("aborts a paused holder's work when its lease is lost, and its release frees only its own lock", async () => {
        const key = freshKey();
        const paused = await startChild();
        const third = await startChild();
        const leaseMs = 300;
        const id = paused.send({ op: "hold", key, leaseMs, waitMs: 1000 });
        const first = await paused.next(id, "acquired");
        paused.process.kill("SIGSTOP");
        await sleep(leaseMs * 2);
        await hold(key, 10_000, 3000, async () => {
          paused.process.kill("SIGCONT");
          // The resumed holder learns through its signal that the lease is gone, and stops.
          assert.equal((await paused.next(id, "aborted")).code, "LOCK_LOST");
          const done = await paused.next(id, "done");
          assert.deepEqual({ ok: done.ok, code: done.code }, { ok: false, code: "LOCK_LOST" });
          // Its release ran after it lost the lock: ours must still stand.
          assert.equal((await third.run({ op: "try", key, leaseMs, waitMs: 200 })).code, "LOCK_BUSY");
        });
        assert.equal((await third.run({ op: "try", key, leaseMs, waitMs: 1000 })).ok, true);
        if (capabilities.fences) assert.ok(first.fence !== null);
      });
    }

    if (!capabilities.fences) {
      it("hands the work no fence, so that the store's own guards decide alone", async () => {
        const guard = await provider.withLock(freshKey(), { leaseMs: 1000, waitMs: 500 }, async (g) => g);
        assert.equal(guard.fence, null);
      });
    }

    if (capabilities.fences) {
      it("issues fences that grow per key, also across provider restarts", async () => {
        const key = freshKey();
        const fenceOf = (lock: LockProvider, lockKey: string) =>
          lock.withLock(lockKey, { leaseMs: 1000, waitMs: 1000 }, async (guard) => guard.fence);
        const first = await fenceOf(provider, key);
        const again = await fenceOf(provider, key);
        const restarted = await createLockProvider(setup.config, setup.context);
        await restarted.init();
        try {
          const afterRestart = await fenceOf(restarted, key);
          assert.ok(first !== null && again !== null && afterRestart !== null);
          assert.ok(again > first && afterRestart > again, `${first} < ${again} < ${afterRestart}`);
          assert.ok(Number.isSafeInteger(afterRestart));
        } finally {
          await restarted.close();
        }
      });
    }

    describe("withLocks (several keys in one operation)", () => {
      it("refuses an empty key list and a key named twice, before touching the backend", async () => {
        const key = freshKey();
        let ran = false;
        const work = async () => {
          ran = true;
        };
        await assert.rejects(provider.withLocks([], { leaseMs: 1000 }, work), RangeError);
        await assert.rejects(provider.withLocks([key, freshKey(), key], { leaseMs: 1000 }, work), RangeError);
        assert.equal(ran, false);
        // Nothing was taken: the key is free at once.
        assert.equal(await hold(key, 1000, 100, async () => "free"), "free");
      });

      it("hands each key its own guard and passes the work's error through, freeing every key", async () => {
        const keys = [freshKey(), freshKey(), freshKey()];
        const mine = new Error("the work failed");
        await assert.rejects(
          provider.withLocks(keys, { leaseMs: 2000, transactionWaitMs: 300 }, async (granted, refused) => {
            assert.equal(refused.size, 0);
            assert.deepEqual([...granted.keys()].sort(), [...keys].sort());
            // Each its own signal: one key's lost lease aborts that key's part alone, and a store that
            // listens on every part's signal does not pile its listeners onto one.
            assert.equal(new Set([...granted.values()].map((guard) => guard.signal)).size, keys.length);
            for (const [key, guard] of granted) {
              assert.equal(guard.lockKey, key);
              assert.equal(guard.signal.aborted, false);
              if (capabilities.fences) assert.ok(Number.isSafeInteger(guard.fence) && guard.fence! > 0);
              else assert.equal(guard.fence, null);
              if (!capabilities.leases && capabilities.excludes)
                assert.deepEqual(guard.transactionLock, { waitMs: 300 });
            }
            throw mine;
          }),
          (error) => error === mine,
        );
        for (const key of keys) assert.equal(await hold(key, 1000, 100, async () => "free"), "free");
      });

      if (capabilities.excludes) {
        it("excludes holders of several keys in several processes, none waiting while holding", async () => {
          const keys = [freshKey(), freshKey(), freshKey()];
          const dir = mkdtempSync(join(os.tmpdir(), "boxoffice-lock-contract-"));
          try {
            keys.forEach((_, i) => {
              writeFileSync(join(dir, `counter-${i}`), "0");
              writeFileSync(join(dir, `fences-${i}`), "");
            });
            const workers = await Promise.all([startChild(), startChild(), startChild()]);
            const iterations = 8;
            const results = await Promise.all(
              workers.map((child, w) =>
                child.run({
                  op: "countMany",
                  // Each process names the keys in its own order: the operation must not care.
                  keys: w === 1 ? [...keys].reverse() : keys,
                  leaseMs: 2000,
                  transactionWaitMs: 50,
                  iterations,
                  dir,
                }),
              ),
            );
            for (const result of results)
              assert.deepEqual(
                { ok: result.ok, code: result.code, violations: result.violations },
                { ok: true, code: undefined, violations: 0 },
              );
            keys.forEach((_, i) => {
              const counted = Number(readFileSync(join(dir, `counter-${i}`), "utf8"));
              assert.equal(counted, workers.length * iterations, `key ${i}`);
              if (capabilities.fences) {
                const fences = readFileSync(join(dir, `fences-${i}`), "utf8")
                  .trim()
                  .split("\n")
                  .map(Number);
                for (let f = 1; f < fences.length; f++)
                  assert.ok(fences[f]! > fences[f - 1]!, `fence ${f} of key ${i} did not grow`);
              }
            });
          } finally {
            rmSync(dir, { recursive: true, force: true });
          }
        });
      }

      if (capabilities.leases) {
        it("takes the free keys, refuses a busy one at once, and releases only its own", async () => {
          const [a, b, c] = [freshKey(), freshKey(), freshKey()];
          const holder = await startChild();
          const rival = await startChild();
          const id = holder.send({ op: "hold", key: b, leaseMs: 10_000, waitMs: 1000 });
          await holder.next(id, "acquired");
          await provider.withLocks([a, b, c], { leaseMs: 2000 }, async (granted, refused) => {
            assert.deepEqual([...granted.keys()].sort(), [a, c].sort());
            assert.deepEqual([...refused.keys()], [b]);
            assert.equal(codeOf(refused.get(b)), "LOCK_BUSY");
            // What was granted excludes others, whether they ask for one key or several.
            assert.equal(
              (await rival.run({ op: "try", key: a, leaseMs: 1000, waitMs: 100 })).code,
              "LOCK_BUSY",
            );
            await provider.withLocks([c, freshKey()], { leaseMs: 1000 }, async (again, busy) => {
              assert.deepEqual([...busy.keys()], [c]);
              assert.equal(again.size, 1);
            });
          });
          // Released: a and c are free; b is still the holder's.
          assert.equal((await rival.run({ op: "try", key: a, leaseMs: 1000, waitMs: 1000 })).ok, true);
          assert.equal((await rival.run({ op: "try", key: c, leaseMs: 1000, waitMs: 1000 })).ok, true);
          assert.equal(
            (await rival.run({ op: "try", key: b, leaseMs: 1000, waitMs: 100 })).code,
            "LOCK_BUSY",
          );
          holder.send({ op: "release", holdId: id });
          assert.equal((await holder.next(id, "done")).ok, true);
          assert.equal((await rival.run({ op: "try", key: b, leaseMs: 1000, waitMs: 1000 })).ok, true);
        });

        it("aborts only the guard of a key whose lease is lost, renews the others, leaves the new owner alone", async () => {
          const [a, b] = [freshKey(), freshKey()];
          const rival = await startChild();
          const leaseMs = 300;
          await provider.withLocks([a, b], { leaseMs }, async (granted) => {
            const guardA = granted.get(a)!;
            const guardB = granted.get(b)!;
            await setup.takeOver!(b);
            const lost = await new Promise<unknown>((resolve, reject) => {
              const timer = setTimeout(() => reject(new Error("b's guard was not aborted")), leaseMs * 5);
              guardB.signal.addEventListener("abort", () => {
                clearTimeout(timer);
                resolve(guardB.signal.reason);
              });
            });
            assert.equal(codeOf(lost), "LOCK_LOST");
            assert.equal(guardA.signal.aborted, false);
            // Several leases later a is still held (renewed) and its guard still stands.
            await sleep(leaseMs * 2);
            assert.equal((await rival.run({ op: "try", key: a, leaseMs, waitMs: 50 })).code, "LOCK_BUSY");
            assert.equal(guardA.signal.aborted, false);
          });
          // The release gave back a, and left b to its new owner.
          assert.equal((await rival.run({ op: "try", key: a, leaseMs, waitMs: 1000 })).ok, true);
          assert.equal((await rival.run({ op: "try", key: b, leaseMs, waitMs: 100 })).code, "LOCK_BUSY");
        });
      }

      if (capabilities.fences) {
        it("issues each key its own fence, growing per key across withLock, withLocks and restarts", async () => {
          const [a, b] = [freshKey(), freshKey()];
          const fencesOf = (lock: LockProvider) =>
            lock.withLocks([a, b], { leaseMs: 1000 }, async (granted) => [
              granted.get(a)!.fence!,
              granted.get(b)!.fence!,
            ]);
          const [a1, b1] = await fencesOf(provider);
          const a2 = await provider.withLock(
            a,
            { leaseMs: 1000, waitMs: 1000 },
            async (guard) => guard.fence!,
          );
          const [a3, b3] = await fencesOf(provider);
          const restarted = await createLockProvider(setup.config, setup.context);
          await restarted.init();
          try {
            const [a4, b4] = await fencesOf(restarted);
            assert.ok(a1! < a2 && a2 < a3! && a3! < a4!, `a: ${a1} < ${a2} < ${a3} < ${a4}`);
            assert.ok(b1! < b3! && b3! < b4!, `b: ${b1} < ${b3} < ${b4}`);
          } finally {
            await restarted.close();
          }
        });
      }

      if (!capabilities.leases && capabilities.excludes) {
        it("lets the store's transaction find a busy key: its transaction lock fails with LOCK_BUSY", async () => {
          const [a, b] = [freshKey(), freshKey()];
          const holder = await startChild();
          const id = holder.send({ op: "hold", key: b, leaseMs: 10_000, waitMs: 1000 });
          await holder.next(id, "acquired");
          await assert.rejects(
            provider.withLocks([a, b], { leaseMs: 1000, transactionWaitMs: 100 }, (granted) =>
              guardedSections(granted, setup.postgresUrl, async () => "never"),
            ),
            (error) => codeOf(error) === "LOCK_BUSY",
          );
          holder.send({ op: "release", holdId: id });
          assert.equal((await holder.next(id, "done")).ok, true);
          const { committed } = await provider.withLocks(
            [a, b],
            { leaseMs: 1000, transactionWaitMs: 1000 },
            (granted) => guardedSections(granted, setup.postgresUrl, async () => "now"),
          );
          assert.deepEqual(committed, [a, b].sort());
        });
      }
    });
  });
}
