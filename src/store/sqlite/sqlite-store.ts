/**
 * The embedded store, in the two designs' layouts (docs/architecture.md, "The two designs"):
 * - `single`: one database file (boxoffice.db) for every event — design A. Every write to any event
 *   waits for the one write lock of that file.
 * - `per-event`: a catalog file (catalog.db) plus one file per event (events/<id>.db) — design B, so
 *   writes to different events never wait on each other.
 *
 * Several processes on one host share a data directory safely: SQLite's own file locking serialises the
 * writers of a file, and every rule is a guarded write inside the writing transaction. The per-event
 * layout keeps at most `maxOpenEvents` event files open per process (least recently used are closed).
 */
import { mkdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { Event, EventPlan, EventUpdate, SeatMap } from "../../domain/event.js";
import { eventOf } from "../../domain/event.js";
import type { PriceTier } from "../../domain/pricing.js";
import { DEFAULT_TIER_ID } from "../../domain/pricing.js";
import type { EventReport } from "../../domain/report.js";
import { reportOf } from "../../domain/report.js";
import type { EventAction } from "../../domain/sale-window.js";
import { eventIdOfHold, eventIdOfOrder, isEventId } from "../../domain/ids.js";
import { refusals } from "../../domain/refusals.js";
import type { Command, Hold, Order, Outcome } from "../../domain/sale.js";
import type {
  AdminOutcome,
  EventBatch,
  EventBatchResult,
  EventPage,
  OrderFilter,
  OrderPage,
  Store,
} from "../store.js";
import type { WaitingRoomStore } from "../waiting-room-store.js";
import { SqliteWaitingRoom } from "./sqlite-waiting-room.js";
import type { WriteGuard } from "../../domain/write-guard.js";
import { StoreUnavailableError } from "../store-errors.js";
import type { SqliteDatabase } from "../../sqlite/open-wal.js";
import { openWal } from "../../sqlite/open-wal.js";
import { mapSqliteError, openExisting, openSqlite } from "./sqlite-database.js";
import type { SaleSnapshot } from "./sqlite-sales.js";
import { SqliteSales } from "./sqlite-sales.js";
import type { SqliteStoreConfig } from "./sqlite-store-config.js";
import { SqliteWebhooks } from "./sqlite-webhooks.js";
import type { WirePart } from "./sqlite-commit-threads.js";
import { fromWire, SqliteCommitThreads } from "./sqlite-commit-threads.js";
import type { HintStatements } from "./sqlite-hints.js";
import { earliestHoldExpiry, HINT_BUSY_TIMEOUT_MS, prepareHints } from "./sqlite-hints.js";
import { immediate } from "../../sqlite/immediate.js";

/**
 * A sweeper claims a due hint by moving it this far ahead; if the sweeper dies or fails on that event
 * file, it is due again then (and another due event is not kept waiting behind a broken one).
 */
const SWEEP_CLAIM_MS = 30_000;
/**
 * Event files the rescan looks at per expireHolds call (per-event layout). A look costs about 0.25 ms
 * (open, one indexed read, close), so a sweep stays within a few milliseconds of blocked event loop.
 */
const RESCAN_EVENTS_PER_SWEEP = 8;
/**
 * Per-event layout: threads committing the events' parts of a multi-event commit in parallel, so that
 * several fsyncs are in flight at once. Not tuned yet: on the busy 2-core machine of the first
 * measurement (docs/benchmarks/many-events.md) CPU, not the disk, was the limit, and 4 threads and none
 * sold alike.
 */
const DEFAULT_COMMIT_THREADS = 4;

/** Event files one dispatch visits at most (per-event layout). */
const DISPATCH_EVENTS_PER_CALL = 16;
/**
 * The single layout's file checkpoints its WAL every 4,000 pages (16 MiB) instead of SQLite's 1,000. A
 * checkpoint copies each page once however often the WAL holds it, and with many events on sale each
 * batch dirties a leaf per event in the tables keyed by event, the same leaves batch after batch: in the
 * store alone (bench/sell-batch.ts, 17 sales over 50 events a batch) 3,221–3,805 against 4,034–4,403
 * sales/s, 160–192 against 155–165 µs of CPU per sale. A file per event keeps SQLite's default: its
 * files are many, each with a WAL of its own.
 */
const SHARED_AUTOCHECKPOINT_PAGES = 4000;

interface EventRow {
  id: string;
  name: string;
  kind: "general" | "seated";
  capacity: number;
  sections: string | null;
  max_per_order: number;
  max_per_customer: number;
  starts_at: string | null;
  created_at: string;
  currency: string;
  tiers: string | null;
}

interface Partition {
  db: SqliteDatabase;
  sales: SqliteSales;
}

function toPlan(row: EventRow): EventPlan {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    capacity: row.capacity,
    sections: row.sections === null ? null : (JSON.parse(row.sections) as EventPlan["sections"]),
    maxPerOrder: row.max_per_order,
    maxPerCustomer: row.max_per_customer,
    startsAt: row.starts_at,
    createdAt: row.created_at,
    currency: row.currency,
    tiers: row.tiers === null ? [legacyTier(row.kind)] : (JSON.parse(row.tiers) as PriceTier[]),
    // The settings below are as created; the event's sales row has them as they are now (snapshot).
    description: null,
    status: "published",
    salesStartAt: null,
    salesEndAt: null,
    confirmHoldsWhilePaused: true,
    maxHoldLifetimeSeconds: 3600,
  };
}

/** The one free tier of an event created before prices (event/002-sale.sql gave it its counters). */
function legacyTier(kind: EventPlan["kind"]): PriceTier {
  return {
    id: DEFAULT_TIER_ID,
    name: kind === "seated" ? "Standard" : "General admission",
    unitPrice: 0,
    quota: null,
    maxPerOrder: null,
    section: null,
    rowFrom: null,
    rowTo: null,
  };
}

function toEvent(plan: EventPlan, snapshot: SaleSnapshot): Event {
  return eventOf(plan, snapshot.settings, snapshot.counters, snapshot.state);
}

export class SqliteStore implements Store {
  readonly #config: SqliteStoreConfig;
  readonly #rescanEventsPerSweep: number;
  #catalog: SqliteDatabase | null = null;
  /** Per-event layout: a second catalog connection for the hints, with a short busy timeout. */
  #hints: HintStatements | null = null;
  #hintsDb: SqliteDatabase | null = null;
  /** Single layout: the one partition that holds every event. */
  #shared: Partition | null = null;
  /** Per-event layout: open event files, least recently used first (Map keeps insertion order). */
  readonly #open = new Map<string, Partition>();
  /** Event definitions never change after creation, so every process may cache them. */
  readonly #plans = new Map<string, EventPlan>();
  #pruneCursor = "";
  /** Null until the first rescan picks a random starting point, so instances cover different slices. */
  #rescanCursor: string | null = null;
  #bookkeepingFailures = 0;
  /** Hints this process failed to write, retried at its next sweep: the rescan is the slow last resort. */
  readonly #unhinted = new Map<string, number>();
  /** Outbox hints this process failed to write, retried at its next dispatch (and found by the rescan). */
  readonly #unhintedOutbox = new Set<string>();
  /** When bookkeeping last failed: an outbox hint does not wait for a catalog that was just busy. */
  #bookkeepingFailedAtMs = Number.NEGATIVE_INFINITY;
  /** Per-event layout: webhooks.db (endpoints and deliveries); the single layout keeps them in #shared. */
  #webhooksDb: SqliteDatabase | null = null;
  /** Per-event layout: the threads that commit executeMany's parts in parallel (null: in this thread). */
  #threads: SqliteCommitThreads | null = null;
  #closed = false;
  /** The waiting rooms, in the catalog. */
  readonly waitingRoom: WaitingRoomStore = new SqliteWaitingRoom(() => this.#catalogDb());

  /** Webhook endpoints and deliveries; the outbox rows are in each event's data (docs/architecture.md). */
  readonly webhooks: SqliteWebhooks;

  /**
   * Called with each failure of bookkeeping that must not fail the request or the sweep it belongs to
   * (the per-event layout's hold-deadline hints). What failed is retried at the next sweep, and found
   * by the rescan if the process dies first.
   */
  onBookkeepingError: ((error: unknown, what: string) => void) | undefined;

  /** `rescanEventsPerSweep`: 0 turns the rescan off, so tests can see what the hints alone do. */
  constructor(config: SqliteStoreConfig, options: { rescanEventsPerSweep?: number } = {}) {
    this.#config = config;
    this.#rescanEventsPerSweep = options.rescanEventsPerSweep ?? RESCAN_EVENTS_PER_SWEEP;
    this.webhooks = new SqliteWebhooks(
      () => this.#webhooksDatabase(),
      (now, limit) => this.#mapDriverErrors(() => this.#dispatchOutbox(now, limit), "dispatch the outbox"),
    );
  }

  get layout(): "single" | "per-event" {
    return this.#config.layout;
  }

  async init(): Promise<void> {
    mkdirSync(this.#config.dir, { recursive: true });
    if (this.#config.layout === "single") {
      const db = openSqlite(
        join(this.#config.dir, "boxoffice.db"),
        ["catalog", "event", "webhooks"],
        this.#config.durability,
        this.#config.migrations,
        SHARED_AUTOCHECKPOINT_PAGES,
      );
      this.#catalog = db;
      this.#shared = { db, sales: new SqliteSales(db) };
    } else {
      mkdirSync(join(this.#config.dir, "events"), { recursive: true });
      const path = join(this.#config.dir, "catalog.db");
      this.#catalog = openSqlite(path, ["catalog"], this.#config.durability, this.#config.migrations);
      try {
        this.#hintsDb = openWal(path, {
          busyTimeoutMs: HINT_BUSY_TIMEOUT_MS,
          synchronous: this.#config.durability === "full" ? "FULL" : "NORMAL",
          setup: () => undefined,
        });
      } catch (error) {
        throw mapSqliteError(error, `cannot open ${path}`);
      }
      this.#hints = prepareHints(this.#hintsDb);
      this.#webhooksDb = openSqlite(
        join(this.#config.dir, "webhooks.db"),
        ["webhooks"],
        this.#config.durability,
      );
      const commitThreads = this.#config.commitThreads ?? DEFAULT_COMMIT_THREADS;
      if (commitThreads > 0) {
        this.#threads = new SqliteCommitThreads(
          {
            dir: this.#config.dir,
            durability: this.#config.durability,
            migrations: this.#config.migrations ?? "apply",
            maxOpenEvents: this.#config.maxOpenEvents,
          },
          commitThreads,
        );
      }
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#threads?.close();
    this.#threads = null;
    for (const partition of this.#open.values()) partition.db.close();
    this.#open.clear();
    this.#hintsDb?.close();
    this.#hintsDb = null;
    this.#webhooksDb?.close();
    this.#webhooksDb = null;
    this.#hints = null;
    this.#catalog?.close();
    this.#catalog = null;
    this.#shared = null;
  }

  async ping(): Promise<void> {
    this.#mapDriverErrors(() => this.#catalogDb().prepare("SELECT 1").get(), "ping");
  }

  async createEvent(plan: EventPlan): Promise<Event> {
    return this.#mapDriverErrors(() => {
      const catalog = this.#catalogDb();
      const insert = () =>
        catalog
          .prepare(
            `INSERT INTO events (id, name, kind, capacity, sections, max_per_order, max_per_customer, starts_at,
                                 created_at, currency, tiers)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
          )
          .run(
            plan.id,
            plan.name,
            plan.kind,
            plan.capacity,
            plan.sections === null ? null : JSON.stringify(plan.sections),
            plan.maxPerOrder,
            plan.maxPerCustomer,
            plan.startsAt,
            plan.createdAt,
            plan.currency,
            JSON.stringify(plan.tiers),
          );
      if (this.#shared) {
        const sales = this.#shared.sales;
        immediate(catalog, () => {
          insert();
          sales.addInventory(plan);
        });
      } else {
        // The event's file is complete before the catalog names it, so no process ever sees half an event.
        const partition = this.#partition(plan.id, true);
        immediate(partition.db, () => partition.sales.addInventory(plan));
        immediate(catalog, insert);
      }
      this.#plans.set(plan.id, plan);
      const snapshot = this.#partition(plan.id).sales.snapshot(plan);
      if (!snapshot) throw new StoreUnavailableError(`event ${plan.id} has no sales row`);
      return toEvent(plan, snapshot);
    }, "create event");
  }

  async getEvent(eventId: string): Promise<Event | null> {
    return this.#mapDriverErrors(() => {
      const plan = this.#plan(eventId);
      if (!plan) return null;
      const snapshot = this.#partition(eventId).sales.snapshot(plan);
      return snapshot ? toEvent(plan, snapshot) : null;
    }, "read event");
  }

  async changeEventStatus(eventId: string, action: EventAction): Promise<AdminOutcome | null> {
    return this.#mapDriverErrors(() => {
      const plan = this.#plan(eventId);
      if (!plan) return null;
      const changed = this.#partition(eventId).sales.changeStatus(plan, action);
      if (!changed) return null;
      return changed.ok ? { ok: true, event: toEvent(plan, changed.snapshot) } : changed;
    }, "change event status");
  }

  async updateEvent(eventId: string, update: EventUpdate): Promise<AdminOutcome | null> {
    return this.#mapDriverErrors(() => {
      const plan = this.#plan(eventId);
      if (!plan) return null;
      const changed = this.#partition(eventId).sales.updateSettings(plan, update);
      if (!changed) return null;
      return changed.ok ? { ok: true, event: toEvent(plan, changed.snapshot) } : changed;
    }, "update event");
  }

  async getReport(eventId: string): Promise<EventReport | null> {
    return this.#mapDriverErrors(() => {
      const plan = this.#plan(eventId);
      if (!plan) return null;
      const snapshot = this.#partition(eventId).sales.snapshot(plan);
      if (!snapshot) return null;
      const { settings, counters, state } = snapshot;
      return reportOf(plan, settings, counters, counters.tiers, state);
    }, "read report");
  }

  async listEvents(page: { limit: number; cursor: string | null }): Promise<EventPage> {
    return this.#mapDriverErrors(() => {
      const rows = this.#catalogDb()
        .prepare<[string, number], EventRow>(
          "SELECT * FROM events WHERE id > ? ORDER BY id LIMIT CAST(? AS INTEGER)",
        )
        .all(page.cursor ?? "", page.limit + 1);
      const more = rows.length > page.limit;
      const events: Event[] = [];
      for (const row of rows.slice(0, page.limit)) {
        const plan = toPlan(row);
        this.#plans.set(plan.id, plan);
        const snapshot = this.#partition(plan.id).sales.snapshot(plan);
        if (snapshot) events.push(toEvent(plan, snapshot));
      }
      return { events, nextCursor: more ? (events.at(-1)?.id ?? null) : null };
    }, "list events");
  }

  async getSeatMap(eventId: string): Promise<SeatMap | null> {
    return this.#mapDriverErrors(() => {
      const plan = this.#plan(eventId);
      if (!plan) return null;
      return this.#partition(eventId).sales.seatMap(plan);
    }, "read seat map");
  }

  async getOrder(orderId: string): Promise<Order | null> {
    const eventId = eventIdOfOrder(orderId);
    if (!eventId) return null;
    return this.#mapDriverErrors(
      () => (this.#plan(eventId) ? this.#partition(eventId).sales.order(orderId) : null),
      "read order",
    );
  }

  async listOrders(
    eventId: string,
    filter: OrderFilter,
    page: { limit: number; cursor: string | null },
  ): Promise<OrderPage | null> {
    return this.#mapDriverErrors(() => {
      if (!this.#plan(eventId)) return null;
      const rows = this.#partition(eventId).sales.orders(eventId, filter, page.cursor ?? "", page.limit + 1);
      const orders = rows.slice(0, page.limit);
      return { orders, nextCursor: rows.length > page.limit ? (orders.at(-1)?.id ?? null) : null };
    }, "list orders");
  }

  async getHold(holdId: string): Promise<Hold | null> {
    const eventId = eventIdOfHold(holdId);
    if (!eventId) return null;
    return this.#mapDriverErrors(
      () => (this.#plan(eventId) ? this.#partition(eventId).sales.hold(holdId) : null),
      "read hold",
    );
  }

  async execute(
    eventId: string,
    commands: readonly Command[],
    guard: WriteGuard | null,
    now: Date,
  ): Promise<Outcome[]> {
    return this.#mapDriverErrors(() => this.#executeOne({ eventId, commands, guard }, now), "sell");
  }

  /**
   * Single layout: every part in ONE IMMEDIATE transaction with one commit (#executeTogether). When a
   * part throws (fenced out, lease lost), that transaction is rolled back and the parts run again in a
   * new one, each in a savepoint of its own (better-sqlite3 nests a transaction as a savepoint), so the
   * part that throws is rolled back alone and reported while the others commit. A failure that ends the
   * transaction itself (an I/O error, the commit) rejects the whole call: nothing of it was committed.
   *
   * Per-event layout: one transaction cannot span files, so each part commits in its own file: in the
   * commit threads (sqlite-commit-threads.ts), the shards' commits at the same time, or with
   * `commitThreads: 0` one after another in this thread (the caller still took the locks in one round). A
   * call with one event commits in this thread either way.
   */
  async executeMany(batches: readonly EventBatch[], now: Date): Promise<EventBatchResult[]> {
    // One event alone commits here, as execute() does: a thread would only add its round trip to the
    // time the event's lock is held.
    if (this.#threads !== null && batches.length > 1)
      return this.#executeInThreads(this.#threads, batches, now);
    return this.#mapDriverErrors(() => {
      const shared = this.#shared;
      if (shared === null) return batches.map((batch) => this.#executePart(batch, now, null));
      const together = this.#executeTogether(shared, batches, now);
      if (together !== null) return together;
      return immediate(shared.db, () => batches.map((batch) => this.#executePart(batch, now, shared.db)));
    }, "sell");
  }

  /**
   * The single layout's usual tick: every part straight in the one transaction, without a savepoint each
   * (a savepoint copies every page a part first writes; over 50 events that was about a third of the
   * store's CPU per sale). Null when a part threw (fenced out, lease lost, a fault): the whole
   * transaction is then rolled back, nothing of it committed, and executeMany commits the parts again
   * one savepoint each, so that only the failing part fails. An error that ended the transaction, or
   * its commit's, is thrown as before.
   */
  #executeTogether(shared: Partition, batches: readonly EventBatch[], now: Date): EventBatchResult[] | null {
    const partFailed = new Error("a part of the tick failed");
    // The parts under one lock key and fence (the global scope) check and write it once.
    const fences = new Map<string, number>();
    try {
      return immediate(shared.db, () =>
        batches.map((batch): EventBatchResult => {
          try {
            return { ok: true, outcomes: this.#executeOne(batch, now, fences) };
          } catch (error) {
            if (!shared.db.inTransaction) throw error;
            throw partFailed;
          }
        }),
      );
    } catch (error) {
      if (error === partFailed) return null;
      throw error;
    }
  }

  /**
   * executeMany in the commit threads: what the main thread knows (the plan, whether the event exists) is
   * decided here; each part is applied in its shard's thread exactly as #executeOne would apply it.
   */
  async #executeInThreads(
    threads: SqliteCommitThreads,
    batches: readonly EventBatch[],
    now: Date,
  ): Promise<EventBatchResult[]> {
    const results: EventBatchResult[] = new Array(batches.length);
    const parts: WirePart[] = [];
    const sentIndexes: number[] = [];
    const stopListening: (() => void)[] = [];
    // One abort flag per lock grant (its signal), all in one shared buffer for the tick: the global scope
    // gives every part the same signal, and a listener each would pass the signal's listener limit.
    const signals = new Map<AbortSignal, number>();
    for (const { guard } of batches)
      if (guard && !signals.has(guard.signal)) signals.set(guard.signal, signals.size);
    const flags = signals.size === 0 ? null : new SharedArrayBuffer(4 * signals.size);
    try {
      if (flags !== null) {
        const view = new Int32Array(flags);
        for (const [signal, index] of signals) {
          const raise = () => Atomics.store(view, index, 1);
          if (signal.aborted) raise();
          else {
            signal.addEventListener("abort", raise, { once: true });
            stopListening.push(() => signal.removeEventListener("abort", raise));
          }
        }
      }
      batches.forEach(({ eventId, commands, guard }, i) => {
        let plan: EventPlan | null;
        try {
          plan = this.#plan(eventId);
        } catch (error) {
          results[i] = { ok: false, error: mapSqliteError(error, "sell") };
          return;
        }
        if (!plan) {
          results[i] = {
            ok: true,
            outcomes: commands.map(() => ({
              ok: false,
              refusal: refusals.eventNotFound(eventId),
              replayed: false,
            })),
          };
          return;
        }
        parts.push({
          eventId,
          plan,
          commands,
          guard: guard && { lockKey: guard.lockKey, fence: guard.fence },
          aborted: guard && flags && { flags, index: signals.get(guard.signal) as number },
          hintMs: earliestHoldExpiry(commands, now),
        });
        sentIndexes.push(i);
      });
      if (parts.length === 0) return results;
      const { results: committed, bookkeeping } = await threads.commit(parts, now.getTime());
      committed.forEach((result, j) => {
        results[sentIndexes[j] as number] = result;
      });
      for (const item of bookkeeping) {
        if (item.error !== null) this.#bookkeepingFailed(fromWire(item.error), item.what);
        if (item.kind === "outbox") this.#unhintedOutbox.add(item.eventId);
        else
          this.#unhinted.set(
            item.eventId,
            Math.min(item.earliestMs, this.#unhinted.get(item.eventId) ?? Infinity),
          );
      }
      return results;
    } finally {
      for (const stop of stopListening) stop();
    }
  }

  /**
   * One part of executeMany: its outcomes, or the error that rolled it back alone. Inside the shared
   * transaction (`db`), an error that ended that transaction is thrown: the whole call fails.
   */
  #executePart(batch: EventBatch, now: Date, db: SqliteDatabase | null): EventBatchResult {
    try {
      return { ok: true, outcomes: this.#executeOne(batch, now) };
    } catch (error) {
      if (db !== null && !db.inTransaction) throw error;
      return { ok: false, error: mapSqliteError(error, "sell") };
    }
  }

  /**
   * execute() without the async wrapper: one event's batch in one transaction (a savepoint if nested),
   * or with `fences` straight in the single file's open transaction (executeInTransaction).
   */
  #executeOne({ eventId, commands, guard }: EventBatch, now: Date, fences?: Map<string, number>): Outcome[] {
    const plan = this.#plan(eventId);
    if (!plan) {
      return commands.map((): Outcome => ({
        ok: false,
        refusal: refusals.eventNotFound(eventId),
        replayed: false,
      }));
    }
    const partition = this.#partition(eventId);
    if (fences) return partition.sales.executeInTransaction(plan, commands, guard, now, fences);
    const hintMs = this.#shared ? null : earliestHoldExpiry(commands, now);
    if (hintMs === null) return partition.sales.execute(plan, commands, guard, now);
    // The hint is written under the event file's write lock and before its commit, so nothing is left
    // to do once the sale is durable: a failing catalog can no longer turn a committed batch into an
    // error, nor a crash leave a hold unhinted. (Inside the batch's own transaction: wrapping it in
    // another one would nest the batch in a savepoint, about 30 % slower here.)
    return partition.sales.execute(plan, commands, guard, now, () =>
      this.#lowerHint(eventId, hintMs, `write the hold-deadline hint of ${eventId}`),
    );
  }

  async expireHolds(now: Date, limit: number): Promise<number> {
    return this.#mapDriverErrors(() => {
      if (this.#shared) {
        let expired = 0;
        for (const eventId of this.#shared.sales.eventsWithOverdueHolds(now, limit)) {
          expired += this.#shared.sales.expireOverdue(eventId, now, limit - expired);
          if (expired >= limit) break;
        }
        return expired;
      }
      return this.#expirePerEvent(now, limit);
    }, "expire holds");
  }

  async pruneIdempotency(olderThan: Date): Promise<number> {
    return this.#mapDriverErrors(() => {
      if (this.#shared) return this.#shared.sales.pruneIdempotency(olderThan);
      // Per-event files: visit a slice of the catalog per call, so one call stays short.
      const ids = this.#catalogDb()
        .prepare<[string], { id: string }>("SELECT id FROM events WHERE id > ? ORDER BY id LIMIT 50")
        .all(this.#pruneCursor)
        .map((r) => r.id);
      this.#pruneCursor = ids.length < 50 ? "" : (ids.at(-1) ?? "");
      let pruned = 0;
      for (const id of ids) pruned += this.#partition(id).sales.pruneIdempotency(olderThan);
      return pruned;
    }, "prune idempotency keys");
  }

  async pruneFences(idleBefore: Date): Promise<number> {
    // Per-event files hold the fences of their own event's keys only (its key and "global"), so they
    // are bounded by the events, which are never deleted.
    return this.#mapDriverErrors(() => this.#shared?.sales.pruneFences(idleBefore) ?? 0, "prune fences");
  }

  /**
   * Per-event layout: the catalog's hold_deadlines table names the event files with holds that may be due,
   * so a sweep opens only those. The invariant, for every event file with an active hold:
   *
   *   its hint is no later than its earliest active hold (or a sweeper's claim on it expires within
   *   SWEEP_CLAIM_MS), unless a hint write failed — then the rescan finds the hold within
   *   ⌈events / RESCAN_EVENTS_PER_SWEEP⌉ sweeps of any one instance.
   *
   * How it is kept:
   * - A seller writes the hint (moves it earlier, never later) inside its event transaction, before the
   *   commit. A batch that then fails or refuses the hold leaves a hint too early, which only costs a
   *   sweep a look at the file.
   * - A hint moves later or disappears only while its event file's write lock is held (#settleHint), from
   *   what the file says under that lock: no seller can commit a hold in between unseen, because a
   *   seller checks the hint under the same lock.
   * - A sweeper claims a due hint by pushing it SWEEP_CLAIM_MS ahead instead of deleting it: a sweeper
   *   that dies or fails after its claim delays those holds, it never loses them.
   * - A hint write that fails (a busy or broken catalog) is reported and retried at this process's next
   *   sweep. If the process dies first, the rescan finds the hold: it walks the event files a slice per
   *   call and moves any hint that is missing or late back to the earliest active hold.
   */
  #expirePerEvent(now: Date, limit: number): number {
    const hints = this.#hintStatements();
    const owed = [...this.#unhinted];
    this.#unhinted.clear();
    for (const [eventId, earliestMs] of owed) {
      this.#lowerHint(eventId, earliestMs, `retry the hold-deadline hint of ${eventId}`);
    }
    this.#rescanSlice();
    let expired = 0;
    for (const { event_id: eventId, earliest_ms: seenMs } of hints.due.all(now.getTime(), limit)) {
      const claim = { eventId, seenMs, retryMs: now.getTime() + SWEEP_CLAIM_MS };
      if (hints.claim.run(claim).changes === 0) continue; // another sweeper took this one, or a seller moved it
      // A failure here leaves the claim: the event is due again SWEEP_CLAIM_MS later.
      const partition = this.#partition(eventId);
      expired += partition.sales.expireOverdue(eventId, now, Math.max(1, limit - expired));
      this.#settleHint(eventId, partition);
      if (expired >= limit) break;
    }
    return expired;
  }

  /**
   * Sets the event's hint to its earliest active hold, or removes it, under the event file's write lock
   * (the transaction writes nothing to the file). If the catalog cannot be written, the sweeper's claim
   * stays and the hint is due again when the claim runs out.
   */
  #settleHint(eventId: string, partition: Partition): void {
    const hints = this.#hintStatements();
    immediate(partition.db, () => {
      const next = partition.sales.earliestActiveHold(eventId);
      try {
        if (next === null) hints.drop.run(eventId);
        else hints.set.run({ eventId, earliestMs: next });
      } catch (error) {
        this.#bookkeepingFailed(error, `settle the hold-deadline hint of ${eventId}`);
        // The claim stays, so the hint is due again SWEEP_CLAIM_MS later at the latest; the retry at
        // this process's next sweep brings it back to the earliest hold sooner.
        if (next !== null)
          this.#unhinted.set(eventId, Math.min(next, this.#unhinted.get(eventId) ?? Infinity));
      }
    });
  }

  /**
   * Moves the event's hint earlier (or creates it); never later, so no due hold is skipped, and so it is
   * safe without the event file's lock. Reads first: most holds come after an earlier one, and a read
   * takes no lock. Never throws: a failure is reported and the hint retried at this process's next sweep.
   * True if it wrote.
   */
  #lowerHint(eventId: string, earliestMs: number, what: string): boolean {
    try {
      const hints = this.#hintStatements();
      const current = hints.get.get(eventId);
      if (current && current.earliest_ms <= earliestMs) return false;
      hints.lower.run({ eventId, earliestMs });
      return true;
    } catch (error) {
      this.#bookkeepingFailed(error, what);
      this.#unhinted.set(eventId, Math.min(earliestMs, this.#unhinted.get(eventId) ?? Infinity));
      return false;
    }
  }

  /**
   * Looks at the next slice of event files for an active hold whose hint is missing or late (one whose
   * hint write failed) and lowers the hint to it. Bounded: RESCAN_EVENTS_PER_SWEEP files per call, each
   * read without its write lock, through a short-lived connection unless the file is open already.
   */
  #rescanSlice(): void {
    const perSweep = this.#rescanEventsPerSweep;
    if (perSweep === 0) return;
    const hints = this.#hintStatements();
    const catalog = this.#catalogDb();
    this.#rescanCursor ??=
      catalog
        .prepare<[], { id: string }>(
          "SELECT id FROM events ORDER BY id LIMIT 1 OFFSET abs(random()) % max(1, (SELECT count(*) FROM events))",
        )
        // Just below the picked id, so the first slice starts with it.
        .get()
        ?.id.slice(0, -1) ?? "";
    const ids = catalog
      .prepare<[string, number], { id: string }>(
        "SELECT id FROM events WHERE id > ? ORDER BY id LIMIT CAST(? AS INTEGER)",
      )
      .all(this.#rescanCursor, perSweep)
      .map((r) => r.id);
    this.#rescanCursor = ids.length < perSweep ? "" : (ids.at(-1) ?? "");
    for (const eventId of ids) {
      try {
        const { earliestHold, hasOutbox } = this.#lookInto(eventId);
        if (earliestHold !== null)
          this.#lowerHint(eventId, earliestHold, `repair the hold-deadline hint of ${eventId}`);
        if (hasOutbox && !hints.outbox.get.get(eventId))
          this.#lowerOutboxHint(eventId, Date.now(), `repair the outbox hint of ${eventId}`);
      } catch (error) {
        this.#bookkeepingFailed(error, `rescan the event file of ${eventId}`);
      }
    }
  }

  /**
   * The earliest active hold of an event file and whether its outbox has rows, read without moving it
   * in the open-file cache.
   */
  #lookInto(eventId: string): { earliestHold: number | null; hasOutbox: boolean } {
    const open = this.#open.get(eventId);
    if (open)
      return { earliestHold: open.sales.earliestActiveHold(eventId), hasOutbox: open.sales.hasOutbox() };
    const path = join(this.#config.dir, "events", `${eventId}.db`);
    if (!existsSync(path)) return { earliestHold: null, hasOutbox: false };
    const db = openExisting(path, HINT_BUSY_TIMEOUT_MS);
    try {
      const row = db
        .prepare<[string], { earliest: number | null }>(
          "SELECT min(expires_at_ms) AS earliest FROM holds WHERE event_id = ? AND status = 'active'",
        )
        .get(eventId);
      // A file no process has opened since the outbox migration has no outbox table, and no rows.
      const hasTable = db
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'outbox'")
        .get();
      const hasOutbox =
        hasTable !== undefined && db.prepare("SELECT 1 FROM outbox LIMIT 1").get() !== undefined;
      return { earliestHold: row?.earliest ?? null, hasOutbox };
    } finally {
      db.close();
    }
  }

  /**
   * Moves committed outbox rows to the webhook deliveries (WebhookStore.dispatchOutbox).
   *
   * Single layout: one transaction reads, copies and deletes them. Per-event layout: the catalog's
   * outbox_hints names the event files whose outbox has rows, kept like the hold-deadline hints (see
   * #expirePerEvent): a transaction that writes outbox rows lowers its file's hint to now under the
   * file's write lock and before its commit; a dispatcher claims a due hint by pushing it
   * SWEEP_CLAIM_MS ahead, copies the rows into webhooks.db (messages and deliveries; a copy made twice
   * stores one), and in one transaction of the event file deletes them and removes the hint if the
   * outbox is now empty or makes it due again if not. A dispatcher that dies after its claim
   * delays those messages by SWEEP_CLAIM_MS; one that dies after copying and before deleting makes the
   * next one copy them again, which stores nothing new. A hint write that fails is retried at this
   * process's next dispatch and found by the sweeper's rescan if the process dies first.
   */
  #dispatchOutbox(now: Date, limit: number): number {
    if (this.#shared) {
      const { db, sales } = this.#shared;
      return immediate(db, () => {
        const rows = sales.readOutbox(limit);
        this.webhooks.fanOut(rows, now);
        sales.deleteOutbox(rows.map((row) => row.seq));
        return rows.length;
      });
    }
    const hints = this.#hintStatements().outbox;
    const owed = [...this.#unhintedOutbox];
    this.#unhintedOutbox.clear();
    for (const eventId of owed)
      this.#lowerOutboxHint(eventId, now.getTime(), `retry the outbox hint of ${eventId}`);
    let moved = 0;
    for (const { event_id: eventId, due_ms: seenMs } of hints.due.all(
      now.getTime(),
      DISPATCH_EVENTS_PER_CALL,
    )) {
      const claim = { eventId, seenMs, retryMs: now.getTime() + SWEEP_CLAIM_MS };
      if (hints.claim.run(claim).changes === 0) continue; // another dispatcher took it, or a seller moved it
      const partition = this.#partition(eventId);
      const rows = partition.sales.readOutbox(Math.max(1, limit - moved));
      this.webhooks.fanOut(rows, now);
      this.#deleteOutboxAndSettle(
        eventId,
        partition,
        rows.map((row) => row.seq),
      );
      moved += rows.length;
      if (moved >= limit) break;
    }
    return moved;
  }

  /**
   * Deletes the dispatched rows and, in the same transaction (under the file's write lock, before its
   * commit), removes the event's outbox hint if its outbox is now empty, else makes it due now. One
   * commit of the event file per dispatch, not two: with many busy events the relay runs on the main
   * thread for every file, and each commit there blocks the event loop for its fsync and takes the
   * file's write lock that the sellers' commit threads wait for.
   */
  #deleteOutboxAndSettle(eventId: string, partition: Partition, seqs: readonly number[]): void {
    const hints = this.#hintStatements().outbox;
    immediate(partition.db, () => {
      partition.sales.deleteOutbox(seqs);
      try {
        if (partition.sales.hasOutbox()) hints.set.run({ eventId, dueMs: Date.now() });
        else hints.drop.run(eventId);
      } catch (error) {
        // The claim stays: the hint is due again SWEEP_CLAIM_MS later.
        this.#bookkeepingFailed(error, `settle the outbox hint of ${eventId}`);
      }
    });
  }

  /**
   * Makes the event's outbox hint due at `dueMs` or earlier (or creates it); never later, so it is safe
   * without the event file's lock. Reads first: during a sale the hint is usually there already. Never
   * throws: a failure is reported and retried at this process's next dispatch.
   */
  #lowerOutboxHint(eventId: string, dueMs: number, what: string, bySeller = false): void {
    // The catalog was busy a moment ago (a hold hint of this very batch, perhaps): a seller holding its
    // event file's lock does not wait for it a second time; the next dispatch writes the hint.
    if (bySeller && Date.now() - this.#bookkeepingFailedAtMs < HINT_BUSY_TIMEOUT_MS) {
      this.#unhintedOutbox.add(eventId);
      return;
    }
    try {
      const hints = this.#hintStatements().outbox;
      const current = hints.get.get(eventId);
      if (current && current.due_ms <= dueMs) return;
      hints.lower.run({ eventId, dueMs });
    } catch (error) {
      this.#bookkeepingFailed(error, what);
      this.#unhintedOutbox.add(eventId);
    }
  }

  #webhooksDatabase(): SqliteDatabase {
    const db = this.#shared?.db ?? this.#webhooksDb;
    if (!db) throw new StoreUnavailableError(this.#closed ? "store closed" : "store not initialised");
    return db;
  }

  #bookkeepingFailed(error: unknown, what: string): void {
    this.#bookkeepingFailures++;
    this.#bookkeepingFailedAtMs = Date.now();
    try {
      this.onBookkeepingError?.(mapSqliteError(error, what), what);
    } catch {
      // A broken observer must not turn bookkeeping into a failed request either.
    }
  }

  /** How many bookkeeping writes failed since the store was opened (see onBookkeepingError). */
  get bookkeepingFailures(): number {
    return this.#bookkeepingFailures;
  }

  #hintStatements(): HintStatements {
    if (!this.#hints)
      throw new StoreUnavailableError(this.#closed ? "store closed" : "store not initialised");
    return this.#hints;
  }

  #catalogDb(): SqliteDatabase {
    if (!this.#catalog)
      throw new StoreUnavailableError(this.#closed ? "store closed" : "store not initialised");
    return this.#catalog;
  }

  #plan(eventId: string): EventPlan | null {
    if (!isEventId(eventId)) return null;
    const cached = this.#plans.get(eventId);
    if (cached) return cached;
    const row = this.#catalogDb()
      .prepare<[string], EventRow>("SELECT * FROM events WHERE id = ?")
      .get(eventId);
    if (!row) return null;
    const plan = toPlan(row);
    this.#plans.set(eventId, plan);
    return plan;
  }

  /** The database that holds an event's sales; opens (and maybe evicts) per-event files as needed. */
  #partition(eventId: string, create = false): Partition {
    if (this.#shared) return this.#shared;
    const open = this.#open.get(eventId);
    if (open) {
      this.#open.delete(eventId);
      this.#open.set(eventId, open);
      return open;
    }
    const path = join(this.#config.dir, "events", `${eventId}.db`);
    if (!create && !existsSync(path)) throw new StoreUnavailableError(`event file ${path} is missing`);
    // A new event's file is made with the current schema; an existing one is checked like the catalog.
    const db = openSqlite(
      path,
      ["event"],
      this.#config.durability,
      create ? "apply" : this.#config.migrations,
    );
    // Under the file's write lock and before the commit of a transaction that wrote outbox rows.
    const onOutbox = (id: string) =>
      this.#lowerOutboxHint(id, Date.now(), `write the outbox hint of ${id}`, true);
    const partition = { db, sales: new SqliteSales(db, { onOutbox }) };
    this.#open.set(eventId, partition);
    while (this.#open.size > this.#config.maxOpenEvents) {
      const [oldestId, oldest] = this.#open.entries().next().value as [string, Partition];
      this.#open.delete(oldestId);
      oldest.db.close();
    }
    return partition;
  }

  /** Runs synchronous driver work, turning driver failures into StoreUnavailableError by code. */
  #mapDriverErrors<T>(work: () => T, what: string): T {
    try {
      return work();
    } catch (error) {
      throw mapSqliteError(error, what);
    }
  }
}
