/**
 * The per-event layout's commit threads (src/store/sqlite/sqlite-commit-threads.ts) send each event's
 * plan to a thread once and then parts without it, until the thread has been sent `rememberedPlans`
 * plans and both sides forget them all. Real threads on real event files: every part must commit on
 * its own plan whether it travelled with the part, was kept from an earlier call, or was sent again
 * after the forgetting.
 */
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import type { EventPlan } from "../../../../src/domain/event.js";
import { planEvent } from "../../../../src/domain/event.js";
import { newEventId } from "../../../../src/domain/ids.js";
import type { Command } from "../../../../src/domain/sale.js";
import { SqliteCommitThreads } from "../../../../src/store/sqlite/sqlite-commit-threads.js";
import { SqliteStore } from "../../../../src/store/sqlite/sqlite-store.js";

describe("SqliteCommitThreads", () => {
  let dir: string;
  const plans: EventPlan[] = [];
  const config = () => ({
    kind: "sqlite" as const,
    dir,
    layout: "per-event" as const,
    durability: "normal" as const,
    maxOpenEvents: 8,
  });

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "boxoffice-commit-threads-"));
    const store = new SqliteStore({ ...config(), commitThreads: 0 });
    await store.init();
    try {
      for (let i = 0; i < 4; i++) {
        // A different capacity each, so that a part decided on another event's plan shows.
        const plan = planEvent(
          { name: `Threads ${i}`, capacity: 10 + i, maxPerCustomer: 100, maxPerOrder: 100 },
          newEventId(),
          new Date(),
        );
        await store.createEvent(plan);
        plans.push(plan);
      }
    } finally {
      await store.close();
    }
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const buyAll = (quantity: number): Command => ({
    type: "purchase",
    customerId: "buyer",
    selection: { quantity, seats: null },
    idempotency: null,
  });

  it("commits every part on its own event's plan, sent, kept or sent again after forgetting", async () => {
    const threads = new SqliteCommitThreads(
      { dir, durability: "normal", migrations: "check", maxOpenEvents: 8 },
      1,
      3,
    );
    const sold = new Map<string, number>();
    try {
      // [0, 1] sends both plans; [0, 1] again sends neither; [2, 3] sends two more (four kept, past
      // three); [0, 2] has both sides forget and sends them again; [0, 2] then sends neither.
      for (const round of [
        [0, 1],
        [0, 1],
        [2, 3],
        [0, 2],
        [0, 2],
      ]) {
        const { results } = await threads.commit(
          round.map((index) => {
            const plan = plans[index] as EventPlan;
            return {
              eventId: plan.id,
              plan,
              commands: [buyAll(1)],
              guard: null,
              aborted: null,
              hintMs: null,
            };
          }),
          Date.now(),
        );
        round.forEach((index, j) => {
          const result = results[j];
          assert.ok(result?.ok, `part for event ${index}: ${String(result && !result.ok && result.error)}`);
          assert.equal(result.outcomes[0]?.ok, true);
          const id = (plans[index] as EventPlan).id;
          sold.set(id, (sold.get(id) ?? 0) + 1);
        });
      }
      // One more than each event's capacity left: refused only if decided on that event's own plan.
      const { results } = await threads.commit(
        plans.map((plan) => ({
          eventId: plan.id,
          plan,
          commands: [buyAll(plan.capacity - (sold.get(plan.id) ?? 0) + 1)],
          guard: null,
          aborted: null,
          hintMs: null,
        })),
        Date.now(),
      );
      for (const result of results) {
        assert.ok(result?.ok);
        const outcome = result.outcomes[0];
        assert.ok(outcome && !outcome.ok);
        assert.equal(outcome.refusal.code, "sold_out");
      }
    } finally {
      await threads.close();
    }
    const store = new SqliteStore(config());
    await store.init();
    try {
      for (const plan of plans) {
        const event = await store.getEvent(plan.id);
        assert.equal(event?.sold, sold.get(plan.id) ?? 0, `sold of ${plan.name}`);
      }
    } finally {
      await store.close();
    }
  });
});
