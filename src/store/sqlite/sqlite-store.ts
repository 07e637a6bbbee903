/**
 * The embedded store, in the seed's two layouts:
 * - `single`: one database file (boxoffice.db) for every event — the seed's "database unchanged". Every
 *   write to any event waits for the one write lock of that file.
 * - `per-event`: a catalog file (catalog.db) plus one file per event (events/<id>.db) — the seed's "each
 *   event's data in a separate file", so writes to different events never wait on each other.
 *
 * Several processes on one host share a data directory safely: SQLite's own file locking serialises the
 * writers of a file, and every rule is a guarded write inside the writing transaction. The per-event
 * layout keeps at most `maxOpenEvents` event files open per process (least recently used are closed).
 */
import { mkdirSync, existsSync } from "node:fs";
import { join } from "node:path";
import type { Event, EventPlan, SeatMap } from "../../domain/event.js";
import { eventIdOfHold, eventIdOfOrder, isEventId } from "../../domain/ids.js";
import type { Command, Hold, Order, Outcome } from "../../domain/sale.js";
import type { StoreConfig } from "../create-store.js";
import type { EventPage, Store, WriteGuard } from "../store.js";
import { StoreUnavailableError } from "../store-errors.js";
import type { SqliteDatabase } from "./sqlite-database.js";
import { mapSqliteError, openSqlite } from "./sqlite-database.js";
import { SqliteSales } from "./sqlite-sales.js";

type SqliteStoreConfig = Extract<StoreConfig, { kind: "sqlite" }>;

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
  };
}

export class SqliteStore implements Store {
  readonly #config: SqliteStoreConfig;
  #catalog: SqliteDatabase | null = null;
  /** Single layout: the one partition that holds every event. */
  #shared: Partition | null = null;
  /** Per-event layout: open event files, least recently used first (Map keeps insertion order). */
  readonly #open = new Map<string, Partition>();
  /** Event definitions never change after creation, so every process may cache them. */
  readonly #plans = new Map<string, EventPlan>();
  #pruneCursor = "";
  #closed = false;

  constructor(config: SqliteStoreConfig) {
    this.#config = config;
  }

  get layout(): "single" | "per-event" {
    return this.#config.layout;
  }

  async init(): Promise<void> {
    mkdirSync(this.#config.dir, { recursive: true });
    if (this.#config.layout === "single") {
      const db = openSqlite(
        join(this.#config.dir, "boxoffice.db"),
        ["catalog", "event"],
        this.#config.durability,
      );
      this.#catalog = db;
      this.#shared = { db, sales: new SqliteSales(db) };
    } else {
      mkdirSync(join(this.#config.dir, "events"), { recursive: true });
      this.#catalog = openSqlite(join(this.#config.dir, "catalog.db"), ["catalog"], this.#config.durability);
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const partition of this.#open.values()) partition.db.close();
    this.#open.clear();
    this.#catalog?.close();
    this.#catalog = null;
    this.#shared = null;
  }

  async ping(): Promise<void> {
    this.#guard(() => this.#catalogDb().prepare("SELECT 1").get(), "ping");
  }

  async createEvent(plan: EventPlan): Promise<Event> {
    return this.#guard(() => {
      const catalog = this.#catalogDb();
      const insert = () =>
        catalog
          .prepare(
            `INSERT INTO events (id, name, kind, capacity, sections, max_per_order, max_per_customer, starts_at, created_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
          );
      if (this.#shared) {
        const sales = this.#shared.sales;
        catalog
          .transaction(() => {
            insert();
            sales.addInventory(plan.id, plan.capacity);
          })
          .immediate();
      } else {
        // The event's file is complete before the catalog names it, so no process ever sees half an event.
        const partition = this.#partition(plan.id, true);
        partition.db.transaction(() => partition.sales.addInventory(plan.id, plan.capacity)).immediate();
        catalog.transaction(insert).immediate();
      }
      this.#plans.set(plan.id, plan);
      return this.#toEvent(plan, { sold: 0, held: 0 });
    }, "create event");
  }

  async getEvent(eventId: string): Promise<Event | null> {
    return this.#guard(() => {
      const plan = this.#plan(eventId);
      if (!plan) return null;
      const counters = this.#partition(eventId).sales.counters(eventId);
      return counters ? this.#toEvent(plan, counters) : null;
    }, "read event");
  }

  async listEvents(page: { limit: number; cursor: string | null }): Promise<EventPage> {
    return this.#guard(() => {
      const rows = this.#catalogDb()
        .prepare<[string, number], EventRow>("SELECT * FROM events WHERE id > ? ORDER BY id LIMIT ?")
        .all(page.cursor ?? "", page.limit + 1);
      const more = rows.length > page.limit;
      const events: Event[] = [];
      for (const row of rows.slice(0, page.limit)) {
        const plan = toPlan(row);
        this.#plans.set(plan.id, plan);
        const counters = this.#partition(plan.id).sales.counters(plan.id) ?? { sold: 0, held: 0 };
        events.push(this.#toEvent(plan, counters));
      }
      return { events, nextCursor: more ? (events.at(-1)?.id ?? null) : null };
    }, "list events");
  }

  async getSeatMap(eventId: string): Promise<SeatMap | null> {
    return this.#guard(() => {
      const plan = this.#plan(eventId);
      if (!plan) return null;
      return this.#partition(eventId).sales.seatMap(plan);
    }, "read seat map");
  }

  async getOrder(orderId: string): Promise<Order | null> {
    const eventId = eventIdOfOrder(orderId);
    if (!eventId) return null;
    return this.#guard(
      () => (this.#plan(eventId) ? this.#partition(eventId).sales.order(orderId) : null),
      "read order",
    );
  }

  async getHold(holdId: string): Promise<Hold | null> {
    const eventId = eventIdOfHold(holdId);
    if (!eventId) return null;
    return this.#guard(
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
    return this.#guard(() => {
      const plan = this.#plan(eventId);
      if (!plan) {
        return commands.map(() => ({
          ok: false as const,
          replayed: false,
          refusal: { code: "event_not_found" as const, detail: "no such event" },
        }));
      }
      const outcomes = this.#partition(eventId).sales.execute(plan, commands, guard, now);
      this.#noteHoldDeadlines(eventId, outcomes);
      return outcomes;
    }, "sell");
  }

  async expireHolds(now: Date, limit: number): Promise<number> {
    return this.#guard(() => {
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
    return this.#guard(() => {
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
    return this.#guard(() => this.#shared?.sales.pruneFences(idleBefore) ?? 0, "prune fences");
  }

  /**
   * Per-event layout: the catalog's hold_deadlines table names the event files with holds that may be due.
   * The sweeper removes an event's hint BEFORE it looks at the file, and a process that creates a hold
   * writes the hint AFTER its commit, so a hold is never left without a hint (see #noteHoldDeadlines).
   */
  #expirePerEvent(now: Date, limit: number): number {
    const catalog = this.#catalogDb();
    const due = catalog
      .prepare<[number, number], { event_id: string; earliest_ms: number }>(
        "SELECT event_id, earliest_ms FROM hold_deadlines WHERE earliest_ms <= ? ORDER BY earliest_ms LIMIT ?",
      )
      .all(now.getTime(), limit);
    let expired = 0;
    for (const { event_id: eventId, earliest_ms: earliestMs } of due) {
      const removed = catalog
        .prepare("DELETE FROM hold_deadlines WHERE event_id = ? AND earliest_ms = ?")
        .run(eventId, earliestMs).changes;
      if (removed === 0) continue; // another sweeper took this one
      const sales = this.#partition(eventId).sales;
      expired += sales.expireOverdue(eventId, now, Math.max(1, limit - expired));
      const next = sales.earliestActiveHold(eventId);
      if (next !== null) this.#writeHoldDeadline(eventId, next);
      if (expired >= limit) break;
    }
    return expired;
  }

  #noteHoldDeadlines(eventId: string, outcomes: Outcome[]): void {
    if (this.#shared) return;
    let earliest = Infinity;
    for (const outcome of outcomes) {
      if (outcome.ok && outcome.value && "expiresAt" in outcome.value && outcome.value.status === "active") {
        earliest = Math.min(earliest, Date.parse(outcome.value.expiresAt));
      }
    }
    if (earliest !== Infinity) this.#writeHoldDeadline(eventId, earliest);
  }

  /** Moves the event's hint earlier (or creates it); never later, so no due hold is skipped. */
  #writeHoldDeadline(eventId: string, earliestMs: number): void {
    const catalog = this.#catalogDb();
    const current = catalog
      .prepare<[string], { earliest_ms: number }>("SELECT earliest_ms FROM hold_deadlines WHERE event_id = ?")
      .get(eventId);
    if (current && current.earliest_ms <= earliestMs) return;
    catalog
      .prepare(
        `INSERT INTO hold_deadlines (event_id, earliest_ms) VALUES (@eventId, @earliestMs)
         ON CONFLICT (event_id) DO UPDATE SET earliest_ms = min(earliest_ms, @earliestMs)`,
      )
      .run({ eventId, earliestMs });
  }

  #toEvent(plan: EventPlan, counters: { sold: number; held: number }): Event {
    return {
      id: plan.id,
      name: plan.name,
      kind: plan.kind,
      capacity: plan.capacity,
      sold: counters.sold,
      held: counters.held,
      available: plan.capacity - counters.sold - counters.held,
      maxPerOrder: plan.maxPerOrder,
      maxPerCustomer: plan.maxPerCustomer,
      startsAt: plan.startsAt,
      createdAt: plan.createdAt,
    };
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
    const db = openSqlite(path, ["event"], this.#config.durability);
    const partition = { db, sales: new SqliteSales(db) };
    this.#open.set(eventId, partition);
    while (this.#open.size > this.#config.maxOpenEvents) {
      const [oldestId, oldest] = this.#open.entries().next().value as [string, Partition];
      this.#open.delete(oldestId);
      oldest.db.close();
    }
    return partition;
  }

  /** Runs synchronous driver work, turning driver failures into StoreUnavailableError by code. */
  #guard<T>(work: () => T, what: string): T {
    try {
      return work();
    } catch (error) {
      throw mapSqliteError(error, what);
    }
  }
}
