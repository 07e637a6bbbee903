/**
 * A process for the per-event layout's hold-deadline hint tests (test/e2e/sqlite-hold-hints.test.ts).
 * Forked with IPC (see forked-child.ts), it opens its own SqliteStore on a shared data directory and, on
 * request:
 * - lock-catalog / unlock-catalog: holds catalog.db's write lock (BEGIN IMMEDIATE on a connection of its
 *   own) until told to let go, as a busy catalog would;
 * - hold: one batch of holds straight to Store.execute, answered with the outcomes as a buyer would see
 *   them (or the error), and the store's count of failed bookkeeping;
 * - churn: batches of holds (due in 1 to ttlSeconds), confirms and releases over some events, forever, until killed,
 *   telling each failed bookkeeping write as it happens;
 * - sweep: expireHolds in a loop until killed, or until told to stop (then "done" for the sweep, once
 *   its last sweep has finished).
 *
 * argv[2]: JSON of HintChildSetup.
 *
 * A store takes no hold shorter than HOLD_TTL_SECONDS.min, so a hold due in t seconds is a hold of that
 * length made that much less than t seconds ago: its batch runs with its clock set back (dueIn).
 */
import Database from "better-sqlite3";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import type { Command, Outcome } from "../../src/domain/sale.js";
import { HOLD_TTL_SECONDS } from "../../src/domain/sale.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";

export interface HintChildSetup {
  dir: string;
  /** Passed to SqliteStore; 0 turns the rescan off. */
  rescanEventsPerSweep: number;
}

export type HintChildRequest =
  | { op: "lock-catalog"; id: number }
  | { op: "unlock-catalog"; id: number }
  | { op: "hold"; id: number; eventId: string; seats: string[][]; ttlSeconds: number }
  | { op: "churn"; id: number; eventIds: string[]; ttlSeconds: number }
  | { op: "sweep"; id: number }
  | { op: "stop"; id: number };

export type HintChildMessage =
  | { id: number; event: "done"; outcomes?: Outcome[]; error?: string; bookkeepingFailures?: number }
  | { id: number; event: "busy" }
  | { id: number; event: "bookkeeping"; what: string };

const setup = JSON.parse(process.argv[2] ?? "{}") as HintChildSetup;
const store = new SqliteStore(
  { kind: "sqlite", dir: setup.dir, layout: "per-event", durability: "full", maxOpenEvents: 8 },
  { rescanEventsPerSweep: setup.rescanEventsPerSweep },
);
await store.init();
let locker: Database.Database | null = null;
let n = 0;

const send = (message: HintChildMessage): void => {
  process.send?.(message);
};
const holdOf = (seats: string[] | null): Command => ({
  type: "hold",
  customerId: `c${process.pid}-${n++}`,
  selection: seats === null ? { quantity: 1, seats: null } : { quantity: seats.length, seats },
  ttlSeconds: HOLD_TTL_SECONDS.min,
  idempotency: null,
});
/** The clock of a batch whose holds (of HOLD_TTL_SECONDS.min) fall due `seconds` from now. */
const dueIn = (seconds: number): Date =>
  new Date(Date.now() - Math.max(0, HOLD_TTL_SECONDS.min - seconds) * 1000);
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)] as T;

async function churn(request: Extract<HintChildRequest, { op: "churn" }>): Promise<void> {
  const held = new Map<string, string[]>();
  // Told as it happens: the test kills this process, and a hint it failed to write is then owed.
  store.onBookkeepingError = (_error, what) => send({ id: request.id, event: "bookkeeping", what });
  send({ id: request.id, event: "busy" });
  for (;;) {
    const eventId = pick(request.eventIds);
    const mine = held.get(eventId) ?? [];
    // Few holds per event, of TTLs from 1 s to ttlSeconds: an event's earliest hold moves both ways,
    // and often a new hold expires before every other one, or an event has none left.
    const commands: Command[] = [holdOf(null)];
    const now = dueIn(1 + Math.floor(Math.random() * request.ttlSeconds));
    const kept: string[] = [];
    for (const holdId of mine) {
      if (Math.random() < 0.6) kept.push(holdId);
      else if (Math.random() < 0.5) commands.push({ type: "release-hold", holdId });
      else commands.push({ type: "confirm-hold", holdId, idempotency: null });
    }
    try {
      const outcomes = await store.execute(eventId, commands, null, now);
      for (const outcome of outcomes) {
        const value = outcome.ok ? outcome.value : null;
        if (value && "expiresAt" in value && value.status === "active") kept.push(value.id);
      }
      held.set(eventId, kept);
    } catch {
      // A busy event file: the next batch goes on, as a buyer's retry would.
    }
    await sleep(5 + Math.random() * 20);
  }
}

let stopping = false;

async function sweep(request: Extract<HintChildRequest, { op: "sweep" }>): Promise<void> {
  send({ id: request.id, event: "busy" });
  while (!stopping) {
    try {
      await store.expireHolds(new Date(), 20);
    } catch {
      // As the hold sweeper does: the next sweep tries again.
    }
    await sleep(Math.random() * 5);
  }
  send({ id: request.id, event: "done" });
}

process.on("message", (request: HintChildRequest) => {
  switch (request.op) {
    case "lock-catalog":
      locker = new Database(join(setup.dir, "catalog.db"));
      locker.exec("BEGIN IMMEDIATE");
      send({ id: request.id, event: "done" });
      return;
    case "unlock-catalog":
      locker?.exec("ROLLBACK");
      locker?.close();
      locker = null;
      send({ id: request.id, event: "done" });
      return;
    case "hold": {
      const commands = request.seats.map((seats) => holdOf(seats.length === 0 ? null : seats));
      store.execute(request.eventId, commands, null, dueIn(request.ttlSeconds)).then(
        (outcomes) =>
          send({
            id: request.id,
            event: "done",
            outcomes,
            bookkeepingFailures: store.bookkeepingFailures,
          }),
        (error: unknown) =>
          send({
            id: request.id,
            event: "done",
            error: String((error as Error).message ?? error),
            bookkeepingFailures: store.bookkeepingFailures,
          }),
      );
      return;
    }
    case "churn":
      void churn(request);
      return;
    case "sweep":
      void sweep(request);
      return;
    case "stop":
      stopping = true;
      return;
  }
});
process.on("disconnect", () => {
  void store.close().finally(() => process.exit(0));
});
send({ id: 0, event: "done" });
