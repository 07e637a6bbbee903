/**
 * One execute() of the PostgreSQL store as it goes, on its locked event row: what was read after the
 * lock (the stored first answers to its keys, its customers' tickets, its seats' owners) as a SaleTally
 * that the domain's decider (src/domain/decide.ts) decides each command on, and what the batch writes.
 *
 * Nothing is written while the batch decides: the holds and orders its commands name were read (with
 * their row locks) beside the rest, and every change waits for the closing statements (close()), a
 * fixed number whatever the number of commands: one each for the extended, confirmed, ended holds and
 * the cancelled orders when there are any, then closeBatch for new orders and holds, their seats, the
 * customers' counts, the kept answers, the webhook messages and the event's counters. Each of them
 * fails by itself when one of its guarded writes finds no row to write (batch_guard, migration 006),
 * so nothing is left to check between them and COMMIT, which travels in the same round trip. The named
 * holds and orders are those committed before the batch (so a hold made in this batch is not yet
 * there to confirm: it is committed with the batch); a change to one is seen by the batch's later
 * commands.
 */
import type { Change, NewIds } from "../../domain/decide.js";
import { decide, replayOf } from "../../domain/decide.js";
import { newHoldId, newOrderId } from "../../domain/ids.js";
import type { Command, Hold, IdempotencyRecord, Order, Outcome } from "../../domain/sale.js";
import { SaleTally } from "../../domain/sale-tally.js";
import type { OutboxMessage } from "../../domain/webhook.js";
import { messagesOfChange, soldOutMessage } from "../../domain/webhook.js";
import type {
  CustomerRow,
  EventRow,
  HoldRow,
  IdempotencyRow,
  OrderRow,
  SeatOwnerRow,
  TierRow,
} from "./postgres-mappers.js";
import { tierCountsOf, toHold, toIdempotencyRecord, toOrder, toSaleRules } from "./postgres-mappers.js";
import type { PipelineStatement } from "./postgres-pipeline.js";
import type { OpeningRows, Transaction } from "./postgres-pool.js";
import type { CloseBatchParams, Statements } from "./postgres-statements.js";
import { bindNamed } from "./postgres-statements.js";

interface NewSale {
  id: string;
  customerId: string;
  quantity: number;
  seats: string[] | null;
  kind: "order" | "hold";
  /** The order's creation, or the hold's expiry. */
  at: Date;
  lines: string;
  total: number;
}

export class PostgresBatch {
  readonly #sql: Statements;
  readonly #row: EventRow;
  readonly #tally: SaleTally;
  /** Stored first answers to this batch's keys, and the ones it adds. */
  readonly #answers: Map<string, IdempotencyRecord>;
  readonly #newAnswers: IdempotencyRecord[] = [];
  /** The holds and orders the batch's commands name, as read with their row locks and as changed since. */
  readonly #holds = new Map<string, Hold>();
  readonly #orders = new Map<string, Order>();
  /** The writes of confirm, extend, release and cancel, for the closing statements. */
  readonly #extended = new Map<string, Date>();
  readonly #confirmed: { holdId: string; orderId: string; paymentReference: string | null }[] = [];
  readonly #ended: { holdId: string; status: string }[] = [];
  readonly #cancelled: string[] = [];
  readonly #sales: NewSale[] = [];
  readonly #claims: { seatId: string; ownerId: string; sold: boolean }[] = [];
  /** Tickets each customer takes in this batch. */
  readonly #taken = new Map<string, number>();
  /** The webhook messages of the batch's changes, inserted by closeBatch. */
  readonly #outbox: OutboxMessage[] = [];

  /**
   * `row` is the locked event; `deciding` the rows of the customers', the seats', the tiers' and the
   * clock's reads (PostgresStore.#decidingReads), all made after the lock.
   */
  constructor(sql: Statements, row: EventRow, answerRows: IdempotencyRow[], deciding: OpeningRows) {
    const [customerRows, seatRows, tierRows, clockRows, holdRows, orderRows] = deciding as [
      CustomerRow[] | undefined,
      SeatOwnerRow[] | undefined,
      TierRow[] | undefined,
      { clock_ms: number }[] | undefined,
      HoldRow[] | undefined,
      OrderRow[] | undefined,
    ];
    for (const hold of holdRows ?? []) this.#holds.set(hold.id, toHold(hold));
    for (const order of orderRows ?? []) this.#orders.set(order.id, toOrder(order));
    const clockMs = Number(clockRows?.[0]?.clock_ms ?? row.clock_ms);
    this.#sql = sql;
    this.#row = row;
    this.#answers = new Map(answerRows.map((answer) => [answer.key, toIdempotencyRecord(answer)]));
    this.#tally = new SaleTally(
      toSaleRules(row),
      () => ({ sold: row.sold, held: row.held, tiers: tierCountsOf(tierRows ?? []) }),
      (customerRows ?? []).map((customer) => [customer.customer_id, customer.tickets] as const),
      (seatRows ?? []).map((seat) => [seat.seat_id, seat.owner_id] as const),
      {
        hold: (holdId) => this.#holds.get(holdId),
        order: (orderId) => this.#orders.get(orderId),
        firstAnswer: (key) => this.#answers.get(key),
        clockMs: () => clockMs,
      },
    );
  }

  /**
   * One command, with its idempotency key: a stored first answer is replayed, else the decider decides
   * on what the batch read and changed so far, and the change is queued for the closing statements.
   */
  apply(command: Command, now: Date): Outcome {
    const replay = replayOf(this.#tally, command);
    if (replay) return replay.outcome;
    const eventId = this.#row.id;
    const ids: NewIds = {
      order: () => newOrderId(eventId, now.getTime()),
      hold: () => newHoldId(eventId, now.getTime()),
    };
    const decision = decide(this.#tally, command, now, ids);
    if (decision.change) this.#queue(decision.change, now);
    if (decision.keep) {
      this.#answers.set(decision.keep.key, decision.keep);
      this.#newAnswers.push(decision.keep);
    }
    return decision.outcome;
  }

  /**
   * Writes what the batch took (closingWrites), its new answers and its counters (closeBatch). With
   * `commit`, COMMIT goes in the same round trip, and the transaction is over when this resolves;
   * without (under a savepoint), the transaction goes on.
   */
  async close(tx: Transaction, now: Date, commit: boolean): Promise<void> {
    const writes = this.closingWrites(now);
    const part = this.closePart(now);
    const statements = part ? [...writes, closeStatement(this.#sql, [part], now)] : writes;
    if (commit) await tx.commit(statements);
    else if (statements.length > 0) await tx.pipeline(statements);
  }

  /**
   * The statements for the batch's extended, confirmed, ended holds and cancelled orders (one per kind
   * there is), to run before closeBatch; each fails unless it wrote every one of its rows.
   */
  closingWrites(now: Date): PipelineStatement[] {
    const eventId = this.#row.id;
    const statements: PipelineStatement[] = [];
    if (this.#extended.size > 0) {
      statements.push({
        text: this.#sql.extendHolds,
        values: [[...this.#extended.keys()], [...this.#extended.values()], eventId, this.#extended.size],
      });
    }
    if (this.#confirmed.length > 0) {
      const confirmed = this.#confirmed;
      statements.push({
        text: this.#sql.confirmHolds,
        values: [
          confirmed.map((c) => c.holdId),
          confirmed.map((c) => c.orderId),
          confirmed.map((c) => c.paymentReference),
          eventId,
          now,
          confirmed.length,
        ],
      });
    }
    if (this.#ended.length > 0) {
      statements.push({
        text: this.#sql.endHolds,
        values: [
          this.#ended.map((e) => e.holdId),
          this.#ended.map((e) => e.status),
          eventId,
          this.#ended.length,
        ],
      });
    }
    if (this.#cancelled.length > 0) {
      statements.push({
        text: this.#sql.cancelOrders,
        values: [this.#cancelled, eventId, now, this.#cancelled.length],
      });
    }
    return statements;
  }

  /**
   * This batch's rows for closeBatch (closeStatement puts several batches' in one statement), or null
   * when it writes nothing there. It tells closeBatch how many customers' and tiers' rows the event must
   * get back.
   */
  closePart(now: Date): ClosePart | null {
    const { sold: soldDelta, held: heldDelta } = this.#tally.moved();
    const row = this.#row;
    // event.sold_out: the batch took tickets and leaves none (row.held already lost what expired).
    if (this.#sales.length > 0 && row.sold + soldDelta + row.held + heldDelta >= row.capacity) {
      const counters = { capacity: row.capacity, sold: row.sold + soldDelta, held: row.held + heldDelta };
      this.#outbox.push(soldOutMessage(row.id, counters, now));
    }
    const tiers = [...this.#tally.movedTiers()].filter(([, moved]) => moved.sold !== 0 || moved.held !== 0);
    const nothing =
      this.#sales.length === 0 &&
      this.#newAnswers.length === 0 &&
      this.#outbox.length === 0 &&
      soldDelta === 0 &&
      heldDelta === 0 &&
      tiers.length === 0;
    if (nothing) return null;
    const eventId = row.id;
    const each = <T>(items: readonly T[]) => items.map(() => eventId);
    return {
      saleEventIds: each(this.#sales),
      saleIds: this.#sales.map((sale) => sale.id),
      saleCustomerIds: this.#sales.map((sale) => sale.customerId),
      saleQuantities: this.#sales.map((sale) => sale.quantity),
      saleSeats: this.#sales.map((sale) => (sale.seats === null ? null : JSON.stringify(sale.seats))),
      saleKinds: this.#sales.map((sale) => sale.kind),
      saleAts: this.#sales.map((sale) => sale.at),
      saleLines: this.#sales.map((sale) => sale.lines),
      saleTotals: this.#sales.map((sale) => sale.total),
      saleCurrencies: this.#sales.map(() => row.currency),
      tierEventIds: each(tiers),
      tierIds: tiers.map(([id]) => id),
      tierSoldDeltas: tiers.map(([, moved]) => moved.sold),
      tierHeldDeltas: tiers.map(([, moved]) => moved.held),
      claimEventIds: each(this.#claims),
      claimSeatIds: this.#claims.map((claim) => claim.seatId),
      claimOwnerIds: this.#claims.map((claim) => claim.ownerId),
      claimSold: this.#claims.map((claim) => claim.sold),
      takenEventIds: [...this.#taken.keys()].map(() => eventId),
      takenCustomerIds: [...this.#taken.keys()],
      takenTickets: [...this.#taken.values()],
      answerEventIds: each(this.#newAnswers),
      answerKeys: this.#newAnswers.map((answer) => answer.key),
      answerFingerprints: this.#newAnswers.map((answer) => answer.fingerprint),
      answerOutcomes: this.#newAnswers.map((answer) => JSON.stringify(answer.answer)),
      outboxIds: this.#outbox.map((message) => message.id),
      outboxEventIds: each(this.#outbox),
      outboxTypes: this.#outbox.map((message) => message.type),
      outboxPayloads: this.#outbox.map((message) => message.payload),
      counterEventIds: [eventId],
      soldDeltas: [soldDelta],
      heldDeltas: [heldDelta],
      expectedCustomers: [this.#taken.size],
      expectedTiers: [tiers.length],
    };
  }

  /**
   * Queues a decided change for the closing statements, and keeps the batch's view of the holds and
   * orders it changed, for its later commands.
   */
  #queue(change: Change, now: Date): void {
    switch (change.type) {
      case "sell":
      case "hold": {
        const owner = change.type === "sell" ? change.order : change.hold;
        const at = change.type === "sell" ? now : new Date(change.hold.expiresAt);
        const kind = change.type === "sell" ? "order" : "hold";
        this.#taken.set(owner.customerId, (this.#taken.get(owner.customerId) ?? 0) + owner.quantity);
        for (const seat of owner.seats ?? []) {
          this.#claims.push({ seatId: seat, ownerId: owner.id, sold: kind === "order" });
        }
        this.#sales.push({
          id: owner.id,
          customerId: owner.customerId,
          quantity: owner.quantity,
          seats: owner.seats,
          kind,
          at,
          lines: JSON.stringify(owner.lines),
          total: owner.total,
        });
        break;
      }
      case "confirm": {
        const { hold, order } = change;
        this.#confirmed.push({
          holdId: hold.id,
          orderId: order.id,
          paymentReference: order.paymentReference ?? null,
        });
        this.#holds.set(hold.id, hold);
        this.#orders.set(order.id, order);
        break;
      }
      case "extend-hold": {
        const { hold } = change;
        // Extended twice: the last expiry is the one written.
        this.#extended.set(hold.id, new Date(hold.expiresAt));
        this.#holds.set(hold.id, hold);
        break;
      }
      case "end-hold": {
        const { hold } = change;
        this.#ended.push({ holdId: hold.id, status: hold.status });
        this.#holds.set(hold.id, hold);
        break;
      }
      case "cancel": {
        const { order } = change;
        this.#cancelled.push(order.id);
        this.#orders.set(order.id, order);
        break;
      }
    }
    this.#tally.apply(change);
    this.#outbox.push(...messagesOfChange(this.#row.id, change, now));
  }
}

/** One batch's rows for closeBatch. */
export type ClosePart = Omit<CloseBatchParams, "now">;

/** closeBatch for several batches' parts (distinct events) at once, with its values. */
export function closeStatement(sql: Statements, parts: readonly ClosePart[], now: Date): PipelineStatement {
  const first = parts[0];
  const params = { now } as CloseBatchParams;
  if (first) {
    for (const key of Object.keys(first) as (keyof ClosePart)[]) {
      let values = first[key] as unknown[];
      if (parts.length > 1) {
        values = [];
        for (const part of parts) for (const value of part[key] as unknown[]) values.push(value);
      }
      (params as unknown as Record<string, unknown[]>)[key] = values;
    }
  }
  return { text: sql.closeBatch.text, values: bindNamed(sql.closeBatch, params) };
}
