/**
 * A process of the hold-race test (test/e2e/hold-races-processes.test.ts): it opens the store on its own
 * (a SQLite data directory or a PostgreSQL schema), says "ready", and on "go" confirms, releases and
 * buys the seats of the holds it is given, cancels orders it made, and sweeps overdue holds, in a random
 * mix, as fast as it can, with no lock at all: only the store's guarded writes stand between it and the
 * other processes doing the same to the same holds and seats.
 *
 * Every process reads one virtual clock, the wall clock shifted so that the holds' deadlines fall inside
 * the race: it runs from `deadlinesFromMs` minus a margin to `deadlinesToMs` plus one. So holds cross
 * their deadline while confirms from one process race the sweepers of all.
 *
 * argv: <setup as JSON> <this process's number, 0 to 3>
 *
 * Sends one "report" message: every outcome it got, and how many holds its sweeps expired.
 */
import { BoxofficeError } from "../../src/domain/errors.js";
import { eventIdOfOrder } from "../../src/domain/ids.js";
import type { Command, Order, Outcome } from "../../src/domain/sale.js";
import type { Store } from "../../src/store/store.js";
import { SqliteStore } from "../../src/store/sqlite/sqlite-store.js";
import { PostgresStore } from "../../src/store/postgres/postgres-store.js";

export type RaceStoreConfig =
  | { kind: "sqlite"; dir: string; layout: "single" | "per-event" }
  | { kind: "postgres"; url: string; schema: string };

export interface RaceHold {
  id: string;
  eventId: string;
  quantity: number;
  seats: string[] | null;
  /** When it expires, ms since the epoch (virtual). */
  deadlineMs: number;
  /** How long before its deadline it is confirmed: 0 for most; some early, to be sure some are confirmed. */
  confirmEarlyMs: number;
  /** Whether processes also try to release it (near its deadline, like their confirms). */
  releasable: boolean;
}

export interface RaceSetup {
  store: RaceStoreConfig;
  holds: RaceHold[];
  /** The first and the last of the holds' deadlines, ms since the epoch (virtual). */
  deadlinesFromMs: number;
  deadlinesToMs: number;
  /** How long before the first deadline the race starts, and after the last it ends (ms). */
  marginMs: number;
}

export interface RaceRecord {
  op: "confirm" | "release" | "purchase" | "cancel";
  holdId: string | null;
  orderId: string | null;
  ok: boolean;
  /** The refusal's code, or the thrown error's code. */
  code: string | null;
  /** The virtual time the command was sent with. */
  atMs: number;
}

export interface RaceReport {
  pid: number;
  records: RaceRecord[];
  /** Holds this process's sweeps expired, in all. */
  swept: number;
  sweeps: number;
}

export type RaceMessage = { type: "ready" } | { type: "report"; report: RaceReport };

function open(config: RaceStoreConfig): Store {
  if (config.kind === "sqlite")
    return new SqliteStore({
      kind: "sqlite",
      dir: config.dir,
      layout: config.layout,
      durability: "full",
      maxOpenEvents: 8,
    });
  return new PostgresStore({
    url: config.url,
    schema: config.schema,
    poolSize: 2,
    statementTimeoutMs: 10_000,
  });
}

/** How far from a hold's deadline, either side, a process confirms or releases it. */
const CLOSE_TO_DEADLINE_MS = 60;
const jitter = (): number => Math.round((Math.random() * 2 - 1) * CLOSE_TO_DEADLINE_MS);

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

async function race(setup: RaceSetup, store: Store, startedAtMs: number): Promise<RaceReport> {
  const origin = setup.deadlinesFromMs - setup.marginMs;
  const end = setup.deadlinesToMs + setup.marginMs;
  const clock = (): number => origin + (Date.now() - startedAtMs);
  const records: RaceRecord[] = [];
  const myOrders: string[] = [];
  let swept = 0;
  let sweeps = 0;
  let bought = 0;

  const run = async (
    eventId: string,
    command: Command,
    record: Omit<RaceRecord, "ok" | "code" | "atMs" | "orderId">,
  ): Promise<void> => {
    const atMs = clock();
    let outcome: Outcome;
    try {
      [outcome] = (await store.execute(eventId, [command], null, new Date(atMs))) as [Outcome];
    } catch (error) {
      // A busy database (SQLITE_BUSY past its timeout, a serialization retry given up): nothing committed.
      if (!(error instanceof BoxofficeError)) throw error;
      records.push({ ...record, orderId: null, ok: false, code: `error:${error.code}`, atMs });
      return;
    }
    const orderId =
      outcome.ok && (command.type === "confirm-hold" || command.type === "purchase")
        ? (outcome.value as Order).id
        : command.type === "cancel-order"
          ? command.orderId
          : null;
    if (outcome.ok && orderId !== null && command.type !== "cancel-order") myOrders.push(orderId);
    records.push({
      ...record,
      orderId,
      ok: outcome.ok,
      code: outcome.ok ? null : outcome.refusal.code,
      atMs,
    });
  };

  // Two processes confirm each hold, and release it if it is releasable, each at a time of its own drawn
  // within CLOSE_TO_DEADLINE_MS of the hold's deadline, either side (or of `confirmEarlyMs` before it);
  // between those, they buy, cancel and sweep.
  const planned = setup.holds
    .filter((_, i) => (i + index) % 4 < 2)
    .flatMap((hold) => [
      { hold, op: "confirm" as const, atMs: hold.deadlineMs - hold.confirmEarlyMs + jitter() },
      ...(hold.releasable ? [{ hold, op: "release" as const, atMs: hold.deadlineMs + jitter() }] : []),
    ])
    .sort((a, b) => a.atMs - b.atMs);
  for (let now = clock(); now <= end || planned.length > 0; now = clock()) {
    if (planned.length > 0 && planned[0]!.atMs <= now) {
      const { hold, op } = planned.shift()!;
      const command: Command =
        op === "confirm"
          ? { type: "confirm-hold", holdId: hold.id, idempotency: null }
          : { type: "release-hold", holdId: hold.id };
      await run(hold.eventId, command, { op, holdId: hold.id });
      continue;
    }
    const roll = Math.random();
    const hold = pick(setup.holds);
    if (roll < 0.4) {
      // The hold's own seats (or as many tickets): they can only be sold once the hold gave them back.
      const selection =
        hold.seats === null
          ? { quantity: hold.quantity, seats: null }
          : { quantity: hold.seats.length, seats: hold.seats };
      await run(
        hold.eventId,
        { type: "purchase", customerId: `buyer-${process.pid}-${bought++}`, selection, idempotency: null },
        { op: "purchase", holdId: hold.id },
      );
    } else if (roll < 0.6 && myOrders.length > 0) {
      const orderId = myOrders.splice(Math.floor(Math.random() * myOrders.length), 1)[0]!;
      await run(eventIdOfOrder(orderId)!, { type: "cancel-order", orderId }, { op: "cancel", holdId: null });
    } else {
      swept += await store.expireHolds(new Date(now), 3);
      sweeps++;
    }
  }
  return { pid: process.pid, records, swept, sweeps };
}

const setup = JSON.parse(process.argv[2]!) as RaceSetup;
/** This process's number, 0 to 3: which holds it confirms. */
const index = Number(process.argv[3]);
const store = open(setup.store);
await store.init();
process.send!({ type: "ready" } satisfies RaceMessage);
process.once("message", (message: { type: "go" }) => {
  if (message.type !== "go") return;
  race(setup, store, Date.now()).then(
    async (report) => {
      await store.close();
      process.send!({ type: "report", report } satisfies RaceMessage, () => process.exit(0));
    },
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
});
