/**
 * The sell path on one SQLite database handle: a batch of commands for one event in one IMMEDIATE
 * transaction (one durable commit), each command inside its own savepoint so that one refusal never
 * undoes another command's sale. Every write is guarded (the WHERE clause or a constraint re-checks the
 * rule), so correctness never rests on the lock or on the checks made before it.
 */
import type { DomainRefusal } from "../../domain/errors.js";
import type { EventPlan, SeatMap, SeatStatus } from "../../domain/event.js";
import { parseSeatId, seatsOf } from "../../domain/event.js";
import { newOrderId, newHoldId } from "../../domain/ids.js";
import type { Command, Hold, Idempotency, Order, Outcome, Selection } from "../../domain/sale.js";
import { checkCommand, checkSelection } from "../../domain/sale.js";
import { LockLostError } from "../../domain/lock-errors.js";
import type { WriteGuard } from "../../domain/write-guard.js";
import { FencedOutError } from "../store-errors.js";
import type { SqliteDatabase } from "../../sqlite/open-wal.js";
import { isConstraintError } from "./sqlite-database.js";

export interface Counters {
  sold: number;
  held: number;
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
}

interface HoldRow {
  id: string;
  event_id: string;
  customer_id: string;
  quantity: number;
  seats: string | null;
  status: Hold["status"];
  expires_at_ms: number;
}

/** Thrown inside a command's savepoint to roll back just that command. */
class Refused extends Error {
  constructor(readonly refusal: DomainRefusal) {
    super(refusal.code);
  }
}

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
  };
}

/** Prepared statements and the transactions built on them, for one open database. */
export class SqliteSales {
  readonly #db: SqliteDatabase;
  readonly #s;

  constructor(db: SqliteDatabase) {
    this.#db = db;
    const p = <R = unknown>(sql: string) => db.prepare<unknown[], R>(sql);
    this.#s = {
      insertInventory: p("INSERT INTO inventory (event_id, capacity) VALUES (?, ?)"),
      counters: p<Counters>("SELECT sold, held FROM inventory WHERE event_id = ?"),
      // sold + held + n <= capacity: the guard that makes overselling impossible whatever came before.
      takeSold: p(
        "UPDATE inventory SET sold = sold + @n WHERE event_id = @eventId AND sold + held + @n <= capacity",
      ),
      takeHeld: p(
        "UPDATE inventory SET held = held + @n WHERE event_id = @eventId AND sold + held + @n <= capacity",
      ),
      giveBackSold: p("UPDATE inventory SET sold = sold - @n WHERE event_id = @eventId AND sold >= @n"),
      giveBackHeld: p("UPDATE inventory SET held = held - @n WHERE event_id = @eventId AND held >= @n"),
      heldToSold: p(
        "UPDATE inventory SET held = held - @n, sold = sold + @n WHERE event_id = @eventId AND held >= @n",
      ),
      // A customer's tickets + n <= maxPerCustomer, guarded in the write itself.
      addCustomerTickets: p(
        `INSERT INTO customer_tickets (event_id, customer_id, tickets) VALUES (@eventId, @customerId, @n)
         ON CONFLICT (event_id, customer_id) DO UPDATE SET tickets = tickets + excluded.tickets
         WHERE tickets + excluded.tickets <= @max`,
      ),
      removeCustomerTickets: p(
        "UPDATE customer_tickets SET tickets = tickets - @n WHERE event_id = @eventId AND customer_id = @customerId AND tickets >= @n",
      ),
      claimedSeats: p<{ seat_id: string }>(
        "SELECT seat_id FROM seat_claims WHERE event_id = ? AND seat_id IN (SELECT value FROM json_each(?))",
      ),
      // The primary key (event_id, seat_id) refuses a second claim on a seat.
      claimSeat: p("INSERT INTO seat_claims (event_id, seat_id, owner_id, owner_kind) VALUES (?, ?, ?, ?)"),
      moveClaims: p("UPDATE seat_claims SET owner_id = ?, owner_kind = 'order' WHERE owner_id = ?"),
      dropClaims: p("DELETE FROM seat_claims WHERE owner_id = ?"),
      allClaims: p<{ seat_id: string; owner_kind: "hold" | "order" }>(
        "SELECT seat_id, owner_kind FROM seat_claims WHERE event_id = ?",
      ),
      insertOrder: p(
        `INSERT INTO orders (id, event_id, customer_id, quantity, seats, status, created_at, hold_id)
         VALUES (?, ?, ?, ?, ?, 'confirmed', ?, ?)`,
      ),
      order: p<OrderRow>("SELECT * FROM orders WHERE id = ?"),
      cancelOrder: p(
        "UPDATE orders SET status = 'cancelled', cancelled_at = ? WHERE id = ? AND status = 'confirmed'",
      ),
      insertHold: p(
        `INSERT INTO holds (id, event_id, customer_id, quantity, seats, status, expires_at_ms)
         VALUES (?, ?, ?, ?, ?, 'active', ?)`,
      ),
      hold: p<HoldRow>("SELECT * FROM holds WHERE id = ?"),
      // Only an active hold changes state: that guard is what makes release and expiry happen once.
      endHold: p("UPDATE holds SET status = ? WHERE id = ? AND status = 'active'"),
      overdueHolds: p<HoldRow>(
        "SELECT * FROM holds WHERE event_id = ? AND status = 'active' AND expires_at_ms <= ? ORDER BY expires_at_ms LIMIT ?",
      ),
      earliestActiveHold: p<{ earliest: number | null }>(
        "SELECT min(expires_at_ms) AS earliest FROM holds WHERE event_id = ? AND status = 'active'",
      ),
      eventsWithOverdueHolds: p<{ event_id: string }>(
        "SELECT DISTINCT event_id FROM holds WHERE status = 'active' AND expires_at_ms <= ? LIMIT ?",
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
    };
  }

  /** Adds an event's inventory row (sold = held = 0). Call inside the creating transaction. */
  addInventory(eventId: string, capacity: number): void {
    this.#s.insertInventory.run(eventId, capacity);
  }

  counters(eventId: string): Counters | null {
    return this.#s.counters.get(eventId) ?? null;
  }

  order(orderId: string): Order | null {
    const row = this.#s.order.get(orderId) as OrderRow | undefined;
    return row ? toOrder(row) : null;
  }

  hold(holdId: string): Hold | null {
    const row = this.#s.hold.get(holdId) as HoldRow | undefined;
    return row ? toHold(row) : null;
  }

  /** Seat map of a seated event: the plan's seats, with the claimed ones marked, read in one statement. */
  seatMap(plan: EventPlan): SeatMap {
    const claims = new Map<string, SeatStatus>();
    for (const claim of this.#s.allClaims.all(plan.id) as { seat_id: string; owner_kind: string }[]) {
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
    return (this.#s.eventsWithOverdueHolds.all(now.getTime(), limit) as { event_id: string }[]).map(
      (r) => r.event_id,
    );
  }

  /** The earliest expiry of the event's active holds, or null when it has none. */
  earliestActiveHold(eventId: string): number | null {
    return (
      (this.#s.earliestActiveHold.get(eventId) as { earliest: number | null } | undefined)?.earliest ?? null
    );
  }

  /** Expires the event's overdue holds in one transaction; returns how many. */
  expireOverdue(eventId: string, now: Date, limit: number): number {
    return this.#db.transaction(() => this.#expireOverdue(eventId, now, limit)).immediate();
  }

  pruneIdempotency(olderThan: Date): number {
    return this.#s.pruneIdempotency.run(olderThan.getTime()).changes;
  }

  /** Forgets the keys idle since `idleBefore` and raises the floor to their largest fence (Store.pruneFences). */
  pruneFences(idleBefore: Date): number {
    const idleMicros = idleBefore.getTime() * 1000;
    return this.#db
      .transaction((): number => {
        const idle = this.#s.idleFences.get(idleMicros) as { fence: number | null; keys: number };
        if (idle.fence === null) return 0;
        this.#s.dropIdleFences.run(idleMicros);
        this.#s.setFence.run({ key: "", fence: idle.fence });
        return idle.keys;
      })
      .immediate();
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
    const batch = this.#db.transaction((): Outcome[] => {
      if (guard?.signal.aborted) throw new LockLostError(guard.lockKey);
      if (guard) this.#checkFence(guard);
      underLock?.();
      this.#expireOverdue(plan.id, now, 1000);
      const outcomes = commands.map((command) => this.#applyOne(plan, command, now));
      // The transaction is synchronous, so nothing can abort it half-way; a lease already lost when it
      // started must not commit.
      if (guard?.signal.aborted) throw new LockLostError(guard.lockKey);
      return outcomes;
    });
    return batch.immediate();
  }

  #checkFence(guard: WriteGuard): void {
    if (guard.fence === null) return;
    const highest = (this.#s.fence.get(guard.lockKey) as { fence: number | null } | undefined)?.fence;
    if (highest != null && guard.fence < highest)
      throw new FencedOutError(guard.lockKey, guard.fence, highest);
    this.#s.setFence.run({ key: guard.lockKey, fence: guard.fence });
  }

  /** Runs one command in a savepoint; a refusal rolls back only that command. */
  #applyOne(plan: EventPlan, command: Command, now: Date): Outcome {
    // A command the store cannot take (text that is not valid Unicode, numbers out of range) is refused
    // before it touches a statement, and nothing is stored for its key.
    const unfit = checkCommand(command);
    if (unfit) return { ok: false, refusal: unfit, replayed: false };
    const idempotency = "idempotency" in command ? command.idempotency : null;
    if (idempotency) {
      const stored = this.#s.idempotency.get(plan.id, idempotency.key) as
        { fingerprint: string; outcome: string } | undefined;
      if (stored) {
        if (stored.fingerprint !== idempotency.fingerprint) {
          return {
            ok: false,
            replayed: false,
            refusal: {
              code: "idempotency_key_reused",
              detail: "this Idempotency-Key was used with another request",
            },
          };
        }
        return { ...(JSON.parse(stored.outcome) as Outcome), replayed: true };
      }
    }
    let outcome: Outcome;
    try {
      outcome = this.#db.transaction(() => ({
        ok: true as const,
        value: this.#apply(plan, command, now),
        replayed: false,
      }))();
    } catch (error) {
      if (error instanceof Refused) outcome = { ok: false, refusal: error.refusal, replayed: false };
      else if (isConstraintError(error)) {
        // A guard the checks above should have caught; the constraint still held the line.
        const seated =
          (command.type === "purchase" || command.type === "hold") && command.selection.seats !== null;
        outcome = {
          ok: false,
          replayed: false,
          refusal: seated
            ? { code: "seats_unavailable", detail: "a seat was taken", seats: [] }
            : { code: "sold_out", detail: "the tickets were taken" },
        };
      } else throw error;
    }
    if (idempotency) this.#remember(plan.id, idempotency, outcome, now);
    return outcome;
  }

  #remember(eventId: string, idempotency: Idempotency, outcome: Outcome, now: Date): void {
    const { replayed: _replayed, ...stored } = outcome;
    this.#s.insertIdempotency.run(
      eventId,
      idempotency.key,
      idempotency.fingerprint,
      JSON.stringify(stored),
      now.getTime(),
    );
  }

  #apply(plan: EventPlan, command: Command, now: Date): Order | Hold | null {
    switch (command.type) {
      case "purchase":
        return this.#purchase(plan, command.customerId, command.selection, null, now);
      case "hold":
        return this.#hold(plan, command.customerId, command.selection, command.ttlSeconds, now);
      case "confirm-hold":
        return this.#confirm(plan, command.holdId, now);
      case "release-hold":
        return this.#release(plan, command.holdId);
      case "cancel-order":
        return this.#cancel(plan, command.orderId, now);
    }
  }

  /** Checks a selection, then takes its seats and the customer's allowance; throws Refused. */
  #take(
    plan: EventPlan,
    ownerId: string,
    ownerKind: "hold" | "order",
    customerId: string,
    selection: Selection,
  ): void {
    const shape = checkSelection(selection, plan);
    if (shape) throw new Refused(shape);
    if (selection.seats !== null) {
      const unknown = selection.seats.filter((id) => parseSeatId(id, plan.sections ?? []) === null);
      if (unknown.length > 0)
        throw new Refused({ code: "invalid_request", detail: `no such seat: ${unknown.join(", ")}` });
      const taken = (
        this.#s.claimedSeats.all(plan.id, JSON.stringify(selection.seats)) as { seat_id: string }[]
      ).map((r) => r.seat_id);
      if (taken.length > 0) {
        throw new Refused({
          code: "seats_unavailable",
          detail: `seats held or sold: ${taken.join(", ")}`,
          seats: taken,
        });
      }
    }
    const counter = ownerKind === "order" ? this.#s.takeSold : this.#s.takeHeld;
    if (counter.run({ eventId: plan.id, n: selection.quantity }).changes !== 1) {
      throw new Refused({ code: "sold_out", detail: `fewer than ${selection.quantity} tickets left` });
    }
    const allowed =
      selection.quantity <= plan.maxPerCustomer &&
      this.#s.addCustomerTickets.run({
        eventId: plan.id,
        customerId,
        n: selection.quantity,
        max: plan.maxPerCustomer,
      }).changes === 1;
    if (!allowed) {
      throw new Refused({
        code: "customer_limit_reached",
        detail: `at most ${plan.maxPerCustomer} tickets per customer for this event`,
      });
    }
    for (const seat of selection.seats ?? []) this.#s.claimSeat.run(plan.id, seat, ownerId, ownerKind);
  }

  #giveBack(
    eventId: string,
    ownerId: string,
    customerId: string,
    quantity: number,
    kind: "sold" | "held",
  ): void {
    (kind === "sold" ? this.#s.giveBackSold : this.#s.giveBackHeld).run({ eventId, n: quantity });
    this.#s.removeCustomerTickets.run({ eventId, customerId, n: quantity });
    this.#s.dropClaims.run(ownerId);
  }

  #purchase(
    plan: EventPlan,
    customerId: string,
    selection: Selection,
    holdId: string | null,
    now: Date,
  ): Order {
    const id = newOrderId(plan.id, now.getTime());
    this.#take(plan, id, "order", customerId, selection);
    const createdAt = now.toISOString();
    const seats = selection.seats === null ? null : JSON.stringify(selection.seats);
    this.#s.insertOrder.run(id, plan.id, customerId, selection.quantity, seats, createdAt, holdId);
    return {
      id,
      eventId: plan.id,
      customerId,
      quantity: selection.quantity,
      seats: selection.seats,
      status: "confirmed",
      createdAt,
      cancelledAt: null,
    };
  }

  #hold(plan: EventPlan, customerId: string, selection: Selection, ttlSeconds: number, now: Date): Hold {
    const id = newHoldId(plan.id, now.getTime());
    this.#take(plan, id, "hold", customerId, selection);
    const expiresAtMs = now.getTime() + ttlSeconds * 1000;
    const seats = selection.seats === null ? null : JSON.stringify(selection.seats);
    this.#s.insertHold.run(id, plan.id, customerId, selection.quantity, seats, expiresAtMs);
    return {
      id,
      eventId: plan.id,
      customerId,
      quantity: selection.quantity,
      seats: selection.seats,
      status: "active",
      expiresAt: new Date(expiresAtMs).toISOString(),
    };
  }

  #confirm(plan: EventPlan, holdId: string, now: Date): Order {
    const row = this.#s.hold.get(holdId) as HoldRow | undefined;
    if (!row || row.event_id !== plan.id)
      throw new Refused({ code: "hold_not_found", detail: "no such hold" });
    if (row.status === "active" && row.expires_at_ms <= now.getTime()) {
      this.#expire(row);
      row.status = "expired";
    }
    if (row.status === "expired") throw new Refused({ code: "hold_expired", detail: "the hold expired" });
    if (row.status !== "active" || this.#s.endHold.run("confirmed", holdId).changes !== 1) {
      throw new Refused({ code: "hold_not_active", detail: `the hold is ${row.status}` });
    }
    const id = newOrderId(plan.id, now.getTime());
    if (this.#s.heldToSold.run({ eventId: plan.id, n: row.quantity }).changes !== 1) {
      throw new Error(`inventory of ${plan.id} holds fewer tickets than hold ${holdId}`);
    }
    this.#s.moveClaims.run(id, holdId);
    const createdAt = now.toISOString();
    this.#s.insertOrder.run(id, plan.id, row.customer_id, row.quantity, row.seats, createdAt, holdId);
    return {
      id,
      eventId: plan.id,
      customerId: row.customer_id,
      quantity: row.quantity,
      seats: row.seats === null ? null : (JSON.parse(row.seats) as string[]),
      status: "confirmed",
      createdAt,
      cancelledAt: null,
    };
  }

  #release(plan: EventPlan, holdId: string): Hold {
    const row = this.#s.hold.get(holdId) as HoldRow | undefined;
    if (!row || row.event_id !== plan.id)
      throw new Refused({ code: "hold_not_found", detail: "no such hold" });
    // Only the call that moves it out of 'active' gives the tickets back: exactly once.
    if (this.#s.endHold.run("released", holdId).changes === 1) {
      this.#giveBack(plan.id, holdId, row.customer_id, row.quantity, "held");
      row.status = "released";
    }
    return toHold(row);
  }

  #cancel(plan: EventPlan, orderId: string, now: Date): Order {
    const row = this.#s.order.get(orderId) as OrderRow | undefined;
    if (!row || row.event_id !== plan.id)
      throw new Refused({ code: "order_not_found", detail: "no such order" });
    // A repeat cancel finds the order cancelled already and releases nothing more.
    if (this.#s.cancelOrder.run(now.toISOString(), orderId).changes === 1) {
      this.#giveBack(plan.id, orderId, row.customer_id, row.quantity, "sold");
      return toOrder(this.#s.order.get(orderId) as OrderRow);
    }
    return toOrder(row);
  }

  #expire(row: HoldRow): boolean {
    if (this.#s.endHold.run("expired", row.id).changes !== 1) return false;
    this.#giveBack(row.event_id, row.id, row.customer_id, row.quantity, "held");
    return true;
  }

  #expireOverdue(eventId: string, now: Date, limit: number): number {
    let expired = 0;
    for (const row of this.#s.overdueHolds.all(eventId, now.getTime(), limit) as HoldRow[]) {
      if (this.#expire(row)) expired++;
    }
    return expired;
  }
}
