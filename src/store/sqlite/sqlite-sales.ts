/**
 * The sell path on one SQLite database handle: a batch of commands for one event in one IMMEDIATE
 * transaction (one durable commit). Under the transaction's write lock it reads what the batch's
 * commands are decided on (the counters, their customers' tickets, their seats' owners), has the domain's
 * decider (src/domain/decide.ts) decide each command in order, and writes each change inside its own
 * savepoint. Every write is guarded (the WHERE clause or a constraint re-checks the rule), so
 * correctness never rests on the lock or on the decision made before it: a write the guard refuses is
 * rolled back to its savepoint and refuses its command alone.
 */
import type { Change, NewIds, SaleRules } from "../../domain/decide.js";
import { decide } from "../../domain/decide.js";
import type { DomainRefusal } from "../../domain/errors.js";
import type { EventPlan, EventSettings, EventUpdate, SeatMap, SeatStatus } from "../../domain/event.js";
import { planEventUpdate, seatsOf, settingsOf } from "../../domain/event.js";
import type { Line } from "../../domain/pricing.js";
import { legacyLines } from "../../domain/pricing.js";
import type { EventAction, SaleState } from "../../domain/sale-window.js";
import { nextStatus, saleStateOf } from "../../domain/sale-window.js";
import type { TallyCounters } from "../../domain/sale-tally.js";
import { newOrderId, newHoldId, orderIdRange } from "../../domain/ids.js";
import { refusals } from "../../domain/refusals.js";
import type { Command, FirstAnswer, Hold, IdempotencyRecord, Order, Outcome } from "../../domain/sale.js";
import { checkCommand } from "../../domain/sale.js";
import { SaleTally } from "../../domain/sale-tally.js";
import { LockLostError } from "../../domain/lock-errors.js";
import type { WriteGuard } from "../../domain/write-guard.js";
import type { OutboxMessage } from "../../domain/webhook.js";
import {
  messagesOfChange,
  outboxMessage,
  soldOutMessage,
  stateChangedMessage,
} from "../../domain/webhook.js";
import { FencedOutError } from "../store-errors.js";
import type { SqliteDatabase } from "../../sqlite/open-wal.js";
import type { OrderFilter } from "../store.js";
import { isConstraintError } from "./sqlite-database.js";
import { immediate } from "../../sqlite/immediate.js";

export interface Counters {
  sold: number;
  held: number;
}

/** What a sale reads of its event in its transaction: settings, counters, and SQLite's clock. */
export interface SaleSnapshot {
  settings: EventSettings;
  counters: TallyCounters;
  /** SQLite's clock (the host's, not the process's JS Date), ms since the epoch. */
  clockMs: number;
  state: SaleState;
}

interface SaleRow {
  capacity: number;
  sold: number;
  held: number;
  status: EventSettings["status"];
  sales_start_ms: number | null;
  sales_end_ms: number | null;
  name: string | null;
  description: string | null;
  max_per_order: number | null;
  max_per_customer: number | null;
  confirm_holds_while_paused: number;
  max_hold_lifetime_seconds: number;
  clock_ms: number;
}

function isoOrNull(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

function msOrNull(iso: string | null): number | null {
  return iso === null ? null : Date.parse(iso);
}

function linesOf(json: string | null, quantity: number, seats: string | null): Line[] {
  return json === null ? legacyLines(quantity, seats !== null) : (JSON.parse(json) as Line[]);
}

interface OrderRow {
  id: string;
  event_id: string;
  customer_id: string;
  quantity: number;
  seats: string | null;
  status: "confirmed" | "cancelled";
  created_at: string;
  cancelled_at: string | null;
  lines: string | null;
  total: number;
  currency: string;
  payment_reference: string | null;
}

interface HoldRow {
  id: string;
  event_id: string;
  customer_id: string;
  quantity: number;
  seats: string | null;
  status: Hold["status"];
  expires_at_ms: number;
  created_at_ms: number | null;
  lines: string | null;
  total: number;
  currency: string;
}

/** The settings as the inventory row's columns take them (named parameters). */
function settingsParams(settings: EventSettings): Record<string, string | number | null> {
  return {
    capacity: settings.capacity,
    status: settings.status,
    salesStartMs: msOrNull(settings.salesStartAt),
    salesEndMs: msOrNull(settings.salesEndAt),
    name: settings.name,
    description: settings.description,
    maxPerOrder: settings.maxPerOrder,
    maxPerCustomer: settings.maxPerCustomer,
    confirmHoldsWhilePaused: settings.confirmHoldsWhilePaused ? 1 : 0,
    maxHoldLifetimeSeconds: settings.maxHoldLifetimeSeconds,
  };
}

/** A guarded write changed nothing: thrown inside a command's savepoint to roll back just that command. */
class GuardRefused extends Error {}

function toOrder(row: OrderRow): Order {
  return {
    id: row.id,
    eventId: row.event_id,
    customerId: row.customer_id,
    quantity: row.quantity,
    seats: row.seats === null ? null : (JSON.parse(row.seats) as string[]),
    status: row.status,
    createdAt: row.created_at,
    cancelledAt: row.cancelled_at,
    lines: linesOf(row.lines, row.quantity, row.seats),
    total: row.total,
    currency: row.currency,
    paymentReference: row.payment_reference,
  };
}

function toHold(row: HoldRow): Hold {
  return {
    id: row.id,
    eventId: row.event_id,
    customerId: row.customer_id,
    quantity: row.quantity,
    seats: row.seats === null ? null : (JSON.parse(row.seats) as string[]),
    status: row.status,
    expiresAt: new Date(row.expires_at_ms).toISOString(),
    createdAt: new Date(row.created_at_ms ?? row.expires_at_ms).toISOString(),
    lines: linesOf(row.lines, row.quantity, row.seats),
    total: row.total,
    currency: row.currency,
  };
}

/** An outbox row as read back for the relay. */
export interface OutboxRow extends OutboxMessage {
  seq: number;
}

/** Prepared statements and the transactions built on them, for one open database. */
export class SqliteSales {
  readonly #db: SqliteDatabase;
  readonly #statements;
  /** Inside the batch's transaction, a savepoint: made once, as wrapping a function costs a few µs. */
  readonly #writeInSavepoint: (rules: SaleRules, change: Change) => void;
  /**
   * Called inside a transaction that wrote outbox rows, before its commit and under the file's write
   * lock (the per-event layout lowers the event's outbox hint there); it must not throw.
   */
  readonly #onOutbox: ((eventId: string) => void) | null;
  /** The event whose outbox the open transaction wrote to, until #outboxWritten() tells #onOutbox. */
  #outboxEvent: string | null = null;

  constructor(db: SqliteDatabase, options: { onOutbox?: (eventId: string) => void } = {}) {
    this.#db = db;
    this.#onOutbox = options.onOutbox ?? null;
    this.#writeInSavepoint = db.transaction((rules: SaleRules, change: Change) => this.#write(rules, change));
    const p = <R = unknown>(sql: string) => db.prepare<unknown[], R>(sql);
    this.#statements = {
      insertInventory: p(
        `INSERT INTO inventory (event_id, capacity, status, sales_start_ms, sales_end_ms, name, description,
                                max_per_order, max_per_customer, confirm_holds_while_paused,
                                max_hold_lifetime_seconds)
         VALUES (@eventId, @capacity, @status, @salesStartMs, @salesEndMs, @name, @description,
                 @maxPerOrder, @maxPerCustomer, @confirmHoldsWhilePaused, @maxHoldLifetimeSeconds)`,
      ),
      // The clock is SQLite's (the host's), read inside the transaction: never a process's JS Date.
      saleRow: p<SaleRow>(
        `SELECT capacity, sold, held, status, sales_start_ms, sales_end_ms, name, description, max_per_order,
                max_per_customer, confirm_holds_while_paused, max_hold_lifetime_seconds,
                CAST(round(unixepoch('subsec') * 1000) AS INTEGER) AS clock_ms
         FROM inventory WHERE event_id = ?`,
      ),
      tierRows: p<{ tier_id: string; sold: number; held: number }>(
        "SELECT tier_id, sold, held FROM price_tiers WHERE event_id = ?",
      ),
      insertTier: p("INSERT INTO price_tiers (event_id, tier_id, quota) VALUES (?, ?, ?)"),
      // sold + held + n <= quota: the database keeps each ticket type inside its quota. The statements
      // run once per sale take positional parameters (n, event, tier, n): binding by name costs more.
      takeTierSold: p(
        `UPDATE price_tiers SET sold = sold + ? WHERE event_id = ? AND tier_id = ?
           AND (quota IS NULL OR sold + held + ? <= quota)`,
      ),
      takeTierHeld: p(
        `UPDATE price_tiers SET held = held + ? WHERE event_id = ? AND tier_id = ?
           AND (quota IS NULL OR sold + held + ? <= quota)`,
      ),
      giveBackTierSold: p(
        "UPDATE price_tiers SET sold = sold - @n WHERE event_id = @eventId AND tier_id = @tierId AND sold >= @n",
      ),
      giveBackTierHeld: p(
        "UPDATE price_tiers SET held = held - @n WHERE event_id = @eventId AND tier_id = @tierId AND held >= @n",
      ),
      tierHeldToSold: p(
        `UPDATE price_tiers SET held = held - @n, sold = sold + @n
         WHERE event_id = @eventId AND tier_id = @tierId AND held >= @n`,
      ),
      setStatus: p("UPDATE inventory SET status = ? WHERE event_id = ?"),
      // sold + held <= capacity: an edit never takes the capacity below what is taken (the CHECK agrees).
      setSettings: p(
        `UPDATE inventory SET capacity = @capacity, sales_start_ms = @salesStartMs, sales_end_ms = @salesEndMs,
           name = @name, description = @description, max_per_order = @maxPerOrder,
           max_per_customer = @maxPerCustomer, confirm_holds_while_paused = @confirmHoldsWhilePaused,
           max_hold_lifetime_seconds = @maxHoldLifetimeSeconds
         WHERE event_id = @eventId AND sold + held <= @capacity`,
      ),
      extendHold: p("UPDATE holds SET expires_at_ms = ? WHERE id = ? AND status = 'active'"),
      // sold + held + n <= capacity: the guard that makes overselling impossible whatever came before.
      // Positional (n, event, n), as every statement run once per sale.
      takeSold: p("UPDATE inventory SET sold = sold + ? WHERE event_id = ? AND sold + held + ? <= capacity"),
      takeHeld: p("UPDATE inventory SET held = held + ? WHERE event_id = ? AND sold + held + ? <= capacity"),
      giveBackSold: p("UPDATE inventory SET sold = sold - @n WHERE event_id = @eventId AND sold >= @n"),
      giveBackHeld: p("UPDATE inventory SET held = held - @n WHERE event_id = @eventId AND held >= @n"),
      heldToSold: p(
        "UPDATE inventory SET held = held - @n, sold = sold + @n WHERE event_id = @eventId AND held >= @n",
      ),
      // A customer's tickets + n <= maxPerCustomer, guarded in the write itself (event, customer, n, max).
      addCustomerTickets: p(
        `INSERT INTO customer_tickets (event_id, customer_id, tickets) VALUES (?, ?, ?)
         ON CONFLICT (event_id, customer_id) DO UPDATE SET tickets = tickets + excluded.tickets
         WHERE tickets + excluded.tickets <= ?`,
      ),
      removeCustomerTickets: p(
        "UPDATE customer_tickets SET tickets = tickets - @n WHERE event_id = @eventId AND customer_id = @customerId AND tickets >= @n",
      ),
      // What the batch's purchases and holds are decided on, read up front in one statement each (the
      // second argument is a JSON array of ids), or on first use for a customer or seat not read then.
      batchTickets: p<{ customer_id: string; tickets: number }>(
        `SELECT customer_id, tickets FROM customer_tickets
         WHERE event_id = ? AND customer_id IN (SELECT value FROM json_each(?))`,
      ),
      batchSeatOwners: p<{ seat_id: string; owner_id: string }>(
        `SELECT seat_id, owner_id FROM seat_claims
         WHERE event_id = ? AND seat_id IN (SELECT value FROM json_each(?))`,
      ),
      customerTickets: p<{ tickets: number }>(
        "SELECT tickets FROM customer_tickets WHERE event_id = ? AND customer_id = ?",
      ),
      seatOwner: p<{ owner_id: string }>(
        "SELECT owner_id FROM seat_claims WHERE event_id = ? AND seat_id = ?",
      ),
      // The primary key (event_id, seat_id) refuses a second claim on a seat.
      claimSeat: p("INSERT INTO seat_claims (event_id, seat_id, owner_id, owner_kind) VALUES (?, ?, ?, ?)"),
      moveClaims: p("UPDATE seat_claims SET owner_id = ?, owner_kind = 'order' WHERE owner_id = ?"),
      dropClaims: p("DELETE FROM seat_claims WHERE owner_id = ?"),
      allClaims: p<{ seat_id: string; owner_kind: "hold" | "order" }>(
        "SELECT seat_id, owner_kind FROM seat_claims WHERE event_id = ?",
      ),
      insertOrder: p(
        `INSERT INTO orders (id, event_id, customer_id, quantity, seats, status, created_at, hold_id, lines,
                             total, currency, payment_reference)
         VALUES (?, ?, ?, ?, ?, 'confirmed', ?, ?, ?, ?, ?, ?)`,
      ),
      order: p<OrderRow>("SELECT * FROM orders WHERE id = ?"),
      // A keyset page of an event's orders: its order ids are one range of the primary key (they begin
      // with the event's ulid, orderIdRange), so no index of its own (migration 005); absent filters are
      // NULL.
      listOrders: p<OrderRow>(
        `SELECT * FROM orders
         WHERE id > @after AND id < @before AND event_id = @eventId
           AND (@status IS NULL OR status = @status)
           AND (@customerId IS NULL OR customer_id = @customerId)
           AND (@createdAfter IS NULL OR created_at >= @createdAfter)
           AND (@createdBefore IS NULL OR created_at < @createdBefore)
         ORDER BY id LIMIT CAST(@limit AS INTEGER)`,
      ),
      cancelOrder: p(
        "UPDATE orders SET status = 'cancelled', cancelled_at = ? WHERE id = ? AND status = 'confirmed'",
      ),
      insertHold: p(
        `INSERT INTO holds (id, event_id, customer_id, quantity, seats, status, expires_at_ms, created_at_ms,
                            lines, total, currency)
         VALUES (?, ?, ?, ?, ?, 'active', ?, ?, ?, ?, ?)`,
      ),
      hold: p<HoldRow>("SELECT * FROM holds WHERE id = ?"),
      // Only an active hold changes state: that guard is what makes release and expiry happen once.
      endHold: p("UPDATE holds SET status = ? WHERE id = ? AND status = 'active'"),
      overdueHolds: p<HoldRow>(
        "SELECT * FROM holds WHERE event_id = ? AND status = 'active' AND expires_at_ms <= ? ORDER BY expires_at_ms LIMIT CAST(? AS INTEGER)",
      ),
      earliestActiveHold: p<{ earliest: number | null }>(
        "SELECT min(expires_at_ms) AS earliest FROM holds WHERE event_id = ? AND status = 'active'",
      ),
      eventsWithOverdueHolds: p<{ event_id: string }>(
        "SELECT DISTINCT event_id FROM holds WHERE status = 'active' AND expires_at_ms <= ? LIMIT CAST(? AS INTEGER)",
      ),
      idempotency: p<{ fingerprint: string; outcome: string }>(
        "SELECT fingerprint, outcome FROM idempotency WHERE event_id = ? AND key = ?",
      ),
      insertIdempotency: p(
        "INSERT INTO idempotency (event_id, key, fingerprint, outcome, created_at_ms) VALUES (?, ?, ?, ?, ?)",
      ),
      pruneIdempotency: p("DELETE FROM idempotency WHERE created_at_ms < ?"),
      // The key's highest fence, or the floor ('') when it has no row (a row is never below the floor).
      fence: p<{ fence: number | null }>("SELECT max(fence) AS fence FROM fences WHERE lock_key IN (?, '')"),
      // Keys whose highest fence was issued before ? (fences are at least the wall clock in µs).
      idleFences: p<{ fence: number | null; keys: number }>(
        "SELECT max(fence) AS fence, count(*) AS keys FROM fences WHERE lock_key <> '' AND fence < ?",
      ),
      dropIdleFences: p("DELETE FROM fences WHERE lock_key <> '' AND fence < ?"),
      setFence: p(
        "INSERT INTO fences (lock_key, fence) VALUES (@key, @fence) ON CONFLICT (lock_key) DO UPDATE SET fence = @fence WHERE fence <= @fence",
      ),
      insertOutbox: p(
        "INSERT INTO outbox (id, event_id, type, payload, created_at_ms) VALUES (?, ?, ?, ?, ?)",
      ),
      readOutbox: p<{
        seq: number;
        id: string;
        event_id: string;
        type: string;
        payload: string;
        created_at_ms: number;
      }>(
        "SELECT seq, id, event_id, type, payload, created_at_ms FROM outbox ORDER BY seq LIMIT CAST(? AS INTEGER)",
      ),
      deleteOutbox: p("DELETE FROM outbox WHERE seq IN (SELECT value FROM json_each(?))"),
      hasOutbox: p<{ one: number }>("SELECT 1 AS one FROM outbox LIMIT 1"),
    };
  }

  /** Adds an event's inventory row (sold = held = 0) and its tiers. Call inside the creating transaction. */
  addInventory(plan: EventPlan): void {
    this.#statements.insertInventory.run({ eventId: plan.id, ...settingsParams(settingsOf(plan)) });
    for (const tier of plan.tiers) this.#statements.insertTier.run(plan.id, tier.id, tier.quota);
  }

  /** The event's settings, counters and state as of now, by SQLite's clock; null when it has no row. */
  snapshot(plan: EventPlan): SaleSnapshot | null {
    const row = this.#statements.saleRow.get(plan.id) as SaleRow | undefined;
    if (!row) return null;
    const settings: EventSettings = {
      name: row.name ?? plan.name,
      description: row.description,
      capacity: row.capacity,
      maxPerOrder: row.max_per_order ?? plan.maxPerOrder,
      maxPerCustomer: row.max_per_customer ?? plan.maxPerCustomer,
      status: row.status,
      salesStartAt: isoOrNull(row.sales_start_ms),
      salesEndAt: isoOrNull(row.sales_end_ms),
      confirmHoldsWhilePaused: row.confirm_holds_while_paused === 1,
      maxHoldLifetimeSeconds: row.max_hold_lifetime_seconds,
    };
    const tiers = new Map<string, { sold: number; held: number }>();
    for (const tier of this.#statements.tierRows.all(plan.id) as {
      tier_id: string;
      sold: number;
      held: number;
    }[]) {
      tiers.set(tier.tier_id, { sold: tier.sold, held: tier.held });
    }
    return {
      settings,
      counters: { sold: row.sold, held: row.held, tiers },
      clockMs: row.clock_ms,
      state: saleStateOf(settings, row.clock_ms),
    };
  }

  /**
   * An admin action, decided and written in one IMMEDIATE transaction on the row every batch reads:
   * the one place an event's status changes. Hook point: the webhooks outbox records
   * `event.state_changed` here, in this transaction. Null when the event has no row.
   */
  changeStatus(
    plan: EventPlan,
    action: EventAction,
  ): { ok: true; snapshot: SaleSnapshot } | { ok: false; refusal: DomainRefusal } | null {
    return immediate(this.#db, () => {
      const before = this.snapshot(plan);
      if (!before) return null;
      const status = nextStatus(before.settings.status, action);
      if (typeof status !== "string") return { ok: false as const, refusal: status };
      if (status !== before.settings.status) this.#statements.setStatus.run(status, plan.id);
      const after = this.snapshot(plan);
      if (after) this.#stateChanged(plan.id, before.state, after.state);
      return after ? { ok: true as const, snapshot: after } : null;
    });
  }

  /**
   * Appends a message to this file's outbox. Call it only inside a transaction that writes the change
   * the message reports (execute(), expireOverdue(), or writeWithOutbox() for changes made elsewhere,
   * such as a sale's state): the message commits or rolls back with the change.
   */
  appendOutbox(message: OutboxMessage): void {
    const { id, eventId, type, payload, createdAtMs } = message;
    this.#statements.insertOutbox.run(id, eventId, type, payload, createdAtMs);
    this.#outboxEvent = message.eventId;
  }

  /**
   * Runs `work` in one IMMEDIATE transaction of this file in which it may call appendOutbox(); before
   * the commit, the store hears that the event's outbox has rows (the per-event layout's hint). The
   * hook for changes the sell path does not make (publish, pause, resume, close: `event.state_changed`,
   * see domain/webhook.ts stateChangedMessage).
   */
  writeWithOutbox<T>(work: () => T): T {
    return immediate(this.#db, () => {
      const result = work();
      this.#outboxWritten();
      return result;
    });
  }

  /**
   * An admin's edit, checked against sold + held read in the same IMMEDIATE transaction as the write
   * (whose WHERE and the table's CHECK refuse a capacity below them on their own). Hook point for
   * `event.state_changed` (#stateChanged) when the edit moves the state. Null when the event has no row.
   */
  updateSettings(
    plan: EventPlan,
    update: EventUpdate,
  ): { ok: true; snapshot: SaleSnapshot } | { ok: false; refusal: DomainRefusal } | null {
    return immediate(this.#db, () => {
      const before = this.snapshot(plan);
      if (!before) return null;
      const taken = before.counters.sold + before.counters.held;
      const next = planEventUpdate(plan, before.settings, update, taken);
      if ("code" in next) return { ok: false as const, refusal: next };
      if (this.#statements.setSettings.run({ eventId: plan.id, ...settingsParams(next) }).changes !== 1) {
        return { ok: false as const, refusal: refusals.capacityBelowTaken(taken) };
      }
      const after = this.snapshot(plan);
      if (after) this.#stateChanged(plan.id, before.state, after.state);
      return after ? { ok: true as const, snapshot: after } : null;
    });
  }

  /** Up to `limit` outbox rows, oldest first. */
  readOutbox(limit: number): OutboxRow[] {
    return (
      this.#statements.readOutbox.all(limit) as {
        seq: number;
        id: string;
        event_id: string;
        type: string;
        payload: string;
        created_at_ms: number;
      }[]
    ).map((row) => ({
      seq: row.seq,
      id: row.id,
      eventId: row.event_id,
      type: row.type as OutboxMessage["type"],
      payload: row.payload,
      createdAtMs: row.created_at_ms,
    }));
  }

  /** Deletes the outbox rows a relay has copied (their seqs are never used again). */
  deleteOutbox(seqs: readonly number[]): void {
    if (seqs.length > 0) this.#statements.deleteOutbox.run(JSON.stringify(seqs));
  }

  hasOutbox(): boolean {
    return this.#statements.hasOutbox.get() !== undefined;
  }

  /** Tells the store, still inside the transaction, that it wrote outbox rows. */
  #outboxWritten(): void {
    const eventId = this.#outboxEvent;
    this.#outboxEvent = null;
    if (eventId !== null) this.#onOutbox?.(eventId);
  }

  /**
   * An admin's action or edit moved the sale's state: `event.state_changed` in the same transaction.
   * (A window that opens or closes by the clock alone writes nothing, so it sends no message.)
   */
  #stateChanged(eventId: string, from: string, to: string): void {
    if (from === to) return;
    this.appendOutbox(stateChangedMessage(eventId, { from, to }, new Date()));
    this.#outboxWritten();
  }

  order(orderId: string): Order | null {
    const row = this.#statements.order.get(orderId) as OrderRow | undefined;
    return row ? toOrder(row) : null;
  }

  /**
   * Up to `limit` of the event's orders past `cursor` in id order, read in one statement. created_at is
   * toISOString's fixed-width text, so comparing it as text compares the instants.
   */
  orders(eventId: string, filter: OrderFilter, cursor: string, limit: number): Order[] {
    const range = orderIdRange(eventId);
    const rows = this.#statements.listOrders.all({
      eventId,
      after: cursor > range.after ? cursor : range.after,
      before: range.before,
      status: filter.status ?? null,
      customerId: filter.customerId ?? null,
      createdAfter: filter.createdAfter ?? null,
      createdBefore: filter.createdBefore ?? null,
      limit,
    }) as OrderRow[];
    return rows.map(toOrder);
  }

  hold(holdId: string): Hold | null {
    const row = this.#statements.hold.get(holdId) as HoldRow | undefined;
    return row ? toHold(row) : null;
  }

  /** Seat map of a seated event: the plan's seats, with the claimed ones marked, read in one statement. */
  seatMap(plan: EventPlan): SeatMap {
    const claims = new Map<string, SeatStatus>();
    for (const claim of this.#statements.allClaims.all(plan.id) as {
      seat_id: string;
      owner_kind: string;
    }[]) {
      claims.set(claim.seat_id, claim.owner_kind === "order" ? "sold" : "held");
    }
    const sections: SeatMap["sections"] = (plan.sections ?? []).map((s) => ({ name: s.name, rows: [] }));
    let section = sections[0];
    let row: SeatMap["sections"][number]["rows"][number] | undefined;
    for (const seat of seatsOf(plan)) {
      if (section?.name !== seat.section) {
        section = sections.find((s) => s.name === seat.section);
        row = undefined;
      }
      if (!section) continue;
      if (row?.row !== seat.row) {
        row = { row: seat.row, seats: [] };
        section.rows.push(row);
      }
      row.seats.push({ id: seat.id, status: claims.get(seat.id) ?? "available" });
    }
    return { sections };
  }

  /** The events (in this database) that have active holds past their expiry. */
  eventsWithOverdueHolds(now: Date, limit: number): string[] {
    return (this.#statements.eventsWithOverdueHolds.all(now.getTime(), limit) as { event_id: string }[]).map(
      (r) => r.event_id,
    );
  }

  /** The earliest expiry of the event's active holds, or null when it has none. */
  earliestActiveHold(eventId: string): number | null {
    return (
      (this.#statements.earliestActiveHold.get(eventId) as { earliest: number | null } | undefined)
        ?.earliest ?? null
    );
  }

  /** Expires the event's overdue holds in one transaction; returns how many. */
  expireOverdue(eventId: string, now: Date, limit: number): number {
    return immediate(this.#db, () => {
      const expired = this.#expireOverdue(eventId, now, limit);
      this.#outboxWritten();
      return expired;
    });
  }

  pruneIdempotency(olderThan: Date): number {
    return this.#statements.pruneIdempotency.run(olderThan.getTime()).changes;
  }

  /** Forgets the keys idle since `idleBefore` and raises the floor to their largest fence (Store.pruneFences). */
  pruneFences(idleBefore: Date): number {
    const idleMicros = idleBefore.getTime() * 1000;
    return immediate(this.#db, (): number => {
      const idle = this.#statements.idleFences.get(idleMicros) as { fence: number | null; keys: number };
      if (idle.fence === null) return 0;
      this.#statements.dropIdleFences.run(idleMicros);
      this.#statements.setFence.run({ key: "", fence: idle.fence });
      return idle.keys;
    });
  }

  /**
   * Applies a batch in one IMMEDIATE transaction. Throws (committing nothing) on a stale fence or a lost
   * lease; returns one Outcome per command otherwise. `underLock` runs inside the transaction, once its
   * write lock is held and before any write (the per-event layout writes its hold-deadline hint there).
   */
  execute(
    plan: EventPlan,
    commands: readonly Command[],
    guard: WriteGuard | null,
    now: Date,
    underLock?: () => void,
  ): Outcome[] {
    return immediate(this.#db, () => this.#apply(plan, commands, guard, now, underLock));
  }

  /**
   * execute() inside a transaction the caller opened and will end: no savepoint of its own, so a throw
   * leaves the batch's writes half done, and the caller must roll the whole transaction back (the single
   * layout's executeMany does, and then commits the parts again one savepoint each).
   */
  executeInTransaction(
    plan: EventPlan,
    commands: readonly Command[],
    guard: WriteGuard | null,
    now: Date,
    fences: Map<string, number>,
  ): Outcome[] {
    if (!this.#db.inTransaction) throw new Error("executeInTransaction outside a transaction");
    return this.#apply(plan, commands, guard, now, undefined, fences);
  }

  /**
   * The batch of execute(), inside a transaction (or savepoint) that holds the file's write lock.
   * `fences`: the fences this transaction already checked and wrote, per lock key (executeInTransaction;
   * the parts of one tick under the global lock share its key and fence, checked once).
   */
  #apply(
    plan: EventPlan,
    commands: readonly Command[],
    guard: WriteGuard | null,
    now: Date,
    underLock?: () => void,
    fences?: Map<string, number>,
  ): Outcome[] {
    this.#outboxEvent = null;
    if (guard?.signal.aborted) throw new LockLostError(guard.lockKey);
    if (guard && (guard.fence === null || fences?.get(guard.lockKey) !== guard.fence)) {
      this.#checkFence(guard);
      if (guard.fence !== null) fences?.set(guard.lockKey, guard.fence);
    }
    underLock?.();
    this.#expireOverdue(plan.id, now, 1000);
    // A command the store cannot take (text that is not valid Unicode, numbers out of range) is refused
    // before it touches a statement, and nothing is stored for its key.
    const unfit = commands.map(checkCommand);
    // The event's settings (status, window, limits, capacity) and SQLite's clock, read under the write
    // lock: a pause or an edit committed before this batch is what it decides on.
    const snapshot = this.snapshot(plan);
    const rules: SaleRules = { ...plan, ...(snapshot?.settings ?? {}) };
    const tally = this.#readTally(rules, snapshot, commands, unfit);
    const ids: NewIds = {
      order: () => newOrderId(plan.id, now.getTime()),
      hold: () => newHoldId(plan.id, now.getTime()),
    };
    const took = { tickets: false };
    const outcomes = commands.map((command, i) =>
      this.#applyOne(rules, tally, command, unfit[i] ?? null, now, ids, took),
    );
    // event.sold_out: this batch took tickets and left none. The counters as read under the write lock,
    // moved by what the batch wrote (every write of the batch goes through the tally; a refused one was
    // rolled back and not applied).
    if (took.tickets && snapshot) {
      const moved = tally.moved();
      const counters = {
        sold: snapshot.counters.sold + moved.sold,
        held: snapshot.counters.held + moved.held,
      };
      if (counters.sold + counters.held >= rules.capacity) {
        this.appendOutbox(soldOutMessage(plan.id, { capacity: rules.capacity, ...counters }, now));
      }
    }
    this.#outboxWritten();
    // The transaction is synchronous, so nothing can abort it half-way; a lease already lost when it
    // started must not commit.
    if (guard?.signal.aborted) throw new LockLostError(guard.lockKey);
    return outcomes;
  }

  #checkFence(guard: WriteGuard): void {
    if (guard.fence === null) return;
    const highest = (this.#statements.fence.get(guard.lockKey) as { fence: number | null } | undefined)
      ?.fence;
    if (highest != null && guard.fence < highest)
      throw new FencedOutError(guard.lockKey, guard.fence, highest);
    this.#statements.setFence.run({ key: guard.lockKey, fence: guard.fence });
  }

  /**
   * What the batch is decided on, read under its write lock and before any write of the batch: the
   * counters (only when a general admission take may ask for them), and the tickets of the customers and
   * the owners of the seats its purchases and holds name, each in one statement, so that no command
   * waits for a read of its own. Everything else is read when a command first asks (a hold, an order, a
   * stored answer, a customer or seat not read up front), so that it includes what earlier commands of
   * the batch wrote.
   */
  #readTally(
    plan: SaleRules,
    snapshot: SaleSnapshot | null,
    commands: readonly Command[],
    unfit: (DomainRefusal | null)[],
  ): SaleTally {
    const customers = new Set<string>();
    const seats = new Set<string>();
    for (let i = 0; i < commands.length; i++) {
      const command = commands[i] as Command;
      if (unfit[i] !== null || (command.type !== "purchase" && command.type !== "hold")) continue;
      customers.add(command.customerId);
      if (command.selection.seats !== null) for (const seat of command.selection.seats) seats.add(seat);
    }
    const s = this.#statements;
    // No inventory row: every take finds no room (the guarded write refuses it too).
    const counters = snapshot?.counters ?? { sold: plan.capacity, held: 0, tiers: new Map() };
    const clockMs = snapshot?.clockMs ?? 0;
    // A customer or seat without a row is known to have no tickets, or to be free.
    const tickets = new Map<string, number>();
    if (customers.size > 0) {
      for (const customer of customers) tickets.set(customer, 0);
      const rows = s.batchTickets.all(plan.id, JSON.stringify([...customers])) as {
        customer_id: string;
        tickets: number;
      }[];
      for (const row of rows) tickets.set(row.customer_id, row.tickets);
    }
    const owners = new Map<string, string | null>();
    if (seats.size > 0) {
      for (const seat of seats) owners.set(seat, null);
      const rows = s.batchSeatOwners.all(plan.id, JSON.stringify([...seats])) as {
        seat_id: string;
        owner_id: string;
      }[];
      for (const row of rows) owners.set(row.seat_id, row.owner_id);
    }
    return new SaleTally(plan, () => counters, tickets, owners, {
      ticketsOf: (customerId) =>
        (s.customerTickets.get(plan.id, customerId) as { tickets: number } | undefined)?.tickets ?? 0,
      seatOwner: (seatId) => (s.seatOwner.get(plan.id, seatId) as { owner_id: string } | undefined)?.owner_id,
      hold: (holdId) => {
        const row = s.hold.get(holdId) as HoldRow | undefined;
        return row && row.event_id === plan.id ? toHold(row) : undefined;
      },
      order: (orderId) => {
        const row = s.order.get(orderId) as OrderRow | undefined;
        return row && row.event_id === plan.id ? toOrder(row) : undefined;
      },
      firstAnswer: (key) => {
        const row = s.idempotency.get(plan.id, key) as { fingerprint: string; outcome: string } | undefined;
        return row
          ? { key, fingerprint: row.fingerprint, answer: JSON.parse(row.outcome) as FirstAnswer }
          : undefined;
      },
      clockMs: () => clockMs,
    });
  }

  /** Decides one command and writes its change in a savepoint; a guard that refuses rolls back only it. */
  #applyOne(
    plan: SaleRules,
    tally: SaleTally,
    command: Command,
    unfit: DomainRefusal | null,
    now: Date,
    ids: NewIds,
    took: { tickets: boolean },
  ): Outcome {
    if (unfit) return { ok: false, refusal: unfit, replayed: false };
    const decision = decide(tally, command, now, ids);
    let { outcome, keep } = decision;
    const change = decision.change;
    if (change) {
      try {
        this.#writeInSavepoint(plan, change);
        tally.apply(change);
        // The change's webhook messages, in the batch's transaction: they commit with it or not at all.
        for (const message of messagesOfChange(plan.id, change, now)) this.appendOutbox(message);
        if (change.type === "sell" || change.type === "hold") took.tickets = true;
      } catch (error) {
        if (!(error instanceof GuardRefused) && !isConstraintError(error)) throw error;
        // A guard the view should have seen coming; the database still held the line.
        const seated =
          (command.type === "purchase" || command.type === "hold") && command.selection.seats !== null;
        const refusal = refusals.takenMeanwhile(seated);
        outcome = { ok: false, refusal, replayed: false };
        if (keep) keep = { ...keep, answer: { ok: false, refusal } };
      }
    }
    if (keep) this.#remember(plan.id, keep, now);
    return outcome;
  }

  #remember(eventId: string, record: IdempotencyRecord, now: Date): void {
    this.#statements.insertIdempotency.run(
      eventId,
      record.key,
      record.fingerprint,
      JSON.stringify(record.answer),
      now.getTime(),
    );
  }

  /** Writes one decided change with guarded statements; throws GuardRefused when a guard refuses it. */
  #write(plan: SaleRules, change: Change): void {
    const eventId = plan.id;
    switch (change.type) {
      case "sell": {
        const { order } = change;
        this.#take(plan, order, "order");
        const seats = order.seats === null ? null : JSON.stringify(order.seats);
        this.#statements.insertOrder.run(
          order.id,
          eventId,
          order.customerId,
          order.quantity,
          seats,
          order.createdAt,
          null,
          JSON.stringify(order.lines),
          order.total,
          order.currency,
          order.paymentReference,
        );
        return;
      }
      case "hold": {
        const { hold } = change;
        this.#take(plan, hold, "hold");
        const seats = hold.seats === null ? null : JSON.stringify(hold.seats);
        const expiresAtMs = Date.parse(hold.expiresAt);
        this.#statements.insertHold.run(
          hold.id,
          eventId,
          hold.customerId,
          hold.quantity,
          seats,
          expiresAtMs,
          Date.parse(hold.createdAt),
          JSON.stringify(hold.lines),
          hold.total,
          hold.currency,
        );
        return;
      }
      case "extend-hold": {
        const { hold } = change;
        if (this.#statements.extendHold.run(Date.parse(hold.expiresAt), hold.id).changes !== 1) {
          throw new Error(`hold ${hold.id} changed under the write lock`);
        }
        return;
      }
      case "confirm": {
        const { hold, order } = change;
        if (this.#statements.endHold.run("confirmed", hold.id).changes !== 1) {
          throw new Error(`hold ${hold.id} changed under the write lock`);
        }
        if (this.#statements.heldToSold.run({ eventId, n: hold.quantity }).changes !== 1) {
          throw new Error(`inventory of ${eventId} holds fewer tickets than hold ${hold.id}`);
        }
        for (const line of hold.lines) {
          if (
            this.#statements.tierHeldToSold.run({ eventId, tierId: line.id, n: line.quantity }).changes !== 1
          ) {
            throw new Error(`tier ${line.id} of ${eventId} holds fewer tickets than hold ${hold.id}`);
          }
        }
        this.#statements.moveClaims.run(order.id, hold.id);
        const seats = order.seats === null ? null : JSON.stringify(order.seats);
        this.#statements.insertOrder.run(
          order.id,
          eventId,
          order.customerId,
          order.quantity,
          seats,
          order.createdAt,
          hold.id,
          JSON.stringify(order.lines),
          order.total,
          order.currency,
          order.paymentReference,
        );
        return;
      }
      case "end-hold": {
        const { hold } = change;
        // Only the write that moves it out of 'active' gives the tickets back: exactly once.
        if (this.#statements.endHold.run(hold.status, hold.id).changes !== 1) {
          throw new Error(`hold ${hold.id} changed under the write lock`);
        }
        this.#giveBack(eventId, hold, "held");
        return;
      }
      case "cancel": {
        const { order } = change;
        // Only the write that moves it out of 'confirmed' gives the tickets back: exactly once.
        if (this.#statements.cancelOrder.run(order.cancelledAt, order.id).changes !== 1) {
          throw new Error(`order ${order.id} changed under the write lock`);
        }
        this.#giveBack(eventId, order, "sold");
        return;
      }
    }
  }

  /** Takes the tickets, the customer's allowance and the seats of a new order or hold, each guarded. */
  #take(plan: SaleRules, owner: Order | Hold, kind: "order" | "hold"): void {
    const counter = kind === "order" ? this.#statements.takeSold : this.#statements.takeHeld;
    const n = owner.quantity;
    // sold + held + n <= capacity, in the statement itself.
    if (counter.run(n, plan.id, n).changes !== 1) throw new GuardRefused();
    // sold + held + n <= quota, per ticket type, in the statement itself.
    const tier = kind === "order" ? this.#statements.takeTierSold : this.#statements.takeTierHeld;
    for (const line of owner.lines) {
      if (tier.run(line.quantity, plan.id, line.id, line.quantity).changes !== 1) throw new GuardRefused();
    }
    const allowed =
      n <= plan.maxPerCustomer &&
      this.#statements.addCustomerTickets.run(plan.id, owner.customerId, n, plan.maxPerCustomer).changes ===
        1;
    if (!allowed) throw new GuardRefused();
    // The primary key (event_id, seat_id) refuses a seat claimed twice.
    for (const seat of owner.seats ?? []) this.#statements.claimSeat.run(plan.id, seat, owner.id, kind);
  }

  #giveBack(eventId: string, owner: Order | Hold, kind: "sold" | "held"): void {
    (kind === "sold" ? this.#statements.giveBackSold : this.#statements.giveBackHeld).run({
      eventId,
      n: owner.quantity,
    });
    const tier = kind === "sold" ? this.#statements.giveBackTierSold : this.#statements.giveBackTierHeld;
    for (const line of owner.lines) tier.run({ eventId, tierId: line.id, n: line.quantity });
    this.#statements.removeCustomerTickets.run({ eventId, customerId: owner.customerId, n: owner.quantity });
    this.#statements.dropClaims.run(owner.id);
  }

  #expire(row: HoldRow, now: Date): boolean {
    if (this.#statements.endHold.run("expired", row.id).changes !== 1) return false;
    this.#giveBack(row.event_id, toHold(row), "held");
    const hold = toHold({ ...row, status: "expired" });
    this.appendOutbox(outboxMessage(row.event_id, "hold.expired", { hold }, now));
    return true;
  }

  #expireOverdue(eventId: string, now: Date, limit: number): number {
    let expired = 0;
    for (const row of this.#statements.overdueHolds.all(eventId, now.getTime(), limit) as HoldRow[]) {
      if (this.#expire(row, now)) expired++;
    }
    return expired;
  }
}
