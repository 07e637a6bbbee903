/**
 * One execute() of the PostgreSQL store as it goes, on its locked event row: what was read after the
 * lock (the stored first answers to its keys, its customers' tickets, its seats' owners) as a SaleTally
 * that the domain's decider (src/domain/decide.ts) decides each command on, and what the batch writes.
 *
 * New orders and holds, their seats, the customers' counts, the kept answers and the event's counters
 * wait for one closing statement (closeBatch), whatever the number of commands; confirm, release and
 * cancel write their guarded statement when decided, on rows committed earlier (so a hold made in this
 * batch is not yet there to confirm: it is committed with the batch).
 */
import type { Change, NewIds } from "../../domain/decide.js";
import { decide, replayOf } from "../../domain/decide.js";
import { newHoldId, newOrderId } from "../../domain/ids.js";
import type { Command, Hold, IdempotencyRecord, Order, Outcome } from "../../domain/sale.js";
import { SaleTally } from "../../domain/sale-tally.js";
import type { OutboxMessage } from "../../domain/webhook.js";
import { messagesOfChange, soldOutMessage } from "../../domain/webhook.js";
import { StoreConflictError } from "./postgres-errors.js";
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
  /** The hold or order the command being decided names, read with its row lock. */
  readonly #named = { hold: undefined as Hold | undefined, order: undefined as Order | undefined };
  readonly #sales: NewSale[] = [];
  readonly #claims: { seatId: string; ownerId: string; sold: boolean }[] = [];
  /** Tickets each customer takes in this batch. */
  readonly #taken = new Map<string, number>();
  /** The webhook messages of the batch's changes, inserted by closeBatch. */
  readonly #outbox: OutboxMessage[] = [];
  /** How many ticket types the closing statement moves (each must come back). */
  #movedTiers = 0;

  /**
   * `row` is the locked event; `deciding` the rows of the customers', the seats', the tiers' and the
   * clock's reads (PostgresStore.#decidingReads), all made after the lock.
   */
  constructor(sql: Statements, row: EventRow, answerRows: IdempotencyRow[], deciding: OpeningRows) {
    const [customerRows, seatRows, tierRows, clockRows] = deciding as [
      CustomerRow[] | undefined,
      SeatOwnerRow[] | undefined,
      TierRow[] | undefined,
      { clock_ms: number }[] | undefined,
    ];
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
        hold: (holdId) => (this.#named.hold?.id === holdId ? this.#named.hold : undefined),
        order: (orderId) => (this.#named.order?.id === orderId ? this.#named.order : undefined),
        firstAnswer: (key) => this.#answers.get(key),
        clockMs: () => clockMs,
      },
    );
  }

  /**
   * One command, with its idempotency key: a stored first answer is replayed (reading nothing), else
   * the hold or order it names is read with its row lock, the decider decides, and the change is
   * written (confirm, release, cancel) or queued for closeBatch (new orders and holds).
   */
  async apply(tx: Transaction, command: Command, now: Date): Promise<Outcome> {
    const replay = replayOf(this.#tally, command);
    if (replay) return replay.outcome;
    const eventId = this.#row.id;
    this.#named.hold = undefined;
    this.#named.order = undefined;
    if (
      command.type === "confirm-hold" ||
      command.type === "release-hold" ||
      command.type === "extend-hold"
    ) {
      const [hold] = await tx.rows<HoldRow>(this.#sql.lockHold, [command.holdId, eventId]);
      this.#named.hold = hold ? toHold(hold) : undefined;
    } else if (command.type === "cancel-order") {
      const [order] = await tx.rows<OrderRow>(this.#sql.lockOrder, [command.orderId, eventId]);
      this.#named.order = order ? toOrder(order) : undefined;
    }
    const ids: NewIds = {
      order: () => newOrderId(eventId, now.getTime()),
      hold: () => newHoldId(eventId, now.getTime()),
    };
    const decision = decide(this.#tally, command, now, ids);
    if (decision.change) await this.#write(tx, decision.change, now);
    if (decision.keep) {
      this.#answers.set(decision.keep.key, decision.keep);
      this.#newAnswers.push(decision.keep);
    }
    return decision.outcome;
  }

  /** Writes what the batch took, its new answers and its counters, in one statement (closeBatch). */
  async close(tx: Transaction, now: Date): Promise<void> {
    const closing = this.closing(now);
    if (!closing) return;
    const [rows] = await tx.pipeline([closing]);
    this.checkClosed(rows ?? []);
  }

  /**
   * The closing statement (closeBatch) with its values, or null when the batch writes nothing; its rows
   * go to checkClosed. Apart from close() so that several events' batches close in one pipeline.
   */
  closing(now: Date): PipelineStatement | null {
    const { sold: soldDelta, held: heldDelta } = this.#tally.moved();
    const row = this.#row;
    // event.sold_out: the batch took tickets and leaves none (row.held already lost what expired).
    if (this.#sales.length > 0 && row.sold + soldDelta + row.held + heldDelta >= row.capacity) {
      const counters = { capacity: row.capacity, sold: row.sold + soldDelta, held: row.held + heldDelta };
      this.#outbox.push(soldOutMessage(row.id, counters, now));
    }
    const tiers = [...this.#tally.movedTiers()].filter(([, moved]) => moved.sold !== 0 || moved.held !== 0);
    this.#movedTiers = tiers.length;
    const nothing =
      this.#sales.length === 0 &&
      this.#newAnswers.length === 0 &&
      this.#outbox.length === 0 &&
      soldDelta === 0 &&
      heldDelta === 0 &&
      tiers.length === 0;
    if (nothing) return null;
    const params: CloseBatchParams = {
      eventId: this.#row.id,
      now,
      saleIds: this.#sales.map((sale) => sale.id),
      saleCustomerIds: this.#sales.map((sale) => sale.customerId),
      saleQuantities: this.#sales.map((sale) => sale.quantity),
      saleSeats: this.#sales.map((sale) => (sale.seats === null ? null : JSON.stringify(sale.seats))),
      saleKinds: this.#sales.map((sale) => sale.kind),
      saleAts: this.#sales.map((sale) => sale.at),
      saleLines: this.#sales.map((sale) => sale.lines),
      saleTotals: this.#sales.map((sale) => sale.total),
      currency: this.#row.currency,
      tierIds: tiers.map(([id]) => id),
      tierSoldDeltas: tiers.map(([, moved]) => moved.sold),
      tierHeldDeltas: tiers.map(([, moved]) => moved.held),
      claimSeatIds: this.#claims.map((claim) => claim.seatId),
      claimOwnerIds: this.#claims.map((claim) => claim.ownerId),
      claimSold: this.#claims.map((claim) => claim.sold),
      takenCustomerIds: [...this.#taken.keys()],
      takenTickets: [...this.#taken.values()],
      maxPerCustomer: this.#tally.rules.maxPerCustomer,
      answerKeys: this.#newAnswers.map((answer) => answer.key),
      answerFingerprints: this.#newAnswers.map((answer) => answer.fingerprint),
      answerOutcomes: this.#newAnswers.map((answer) => JSON.stringify(answer.answer)),
      outboxIds: this.#outbox.map((message) => message.id),
      outboxTypes: this.#outbox.map((message) => message.type),
      outboxPayloads: this.#outbox.map((message) => message.payload),
      soldDelta,
      heldDelta,
    };
    const closeBatch = this.#sql.closeBatch;
    return { text: closeBatch.text, values: bindNamed(closeBatch, params) };
  }

  /** Checks what the closing statement wrote: a guard that refused throws, and nothing may commit. */
  checkClosed(rows: readonly unknown[]): void {
    const [written] = rows as { customers: number; events: number; tiers: number }[];
    // A guard that refused means someone wrote to this event without its row lock: commit nothing.
    if (written?.customers !== this.#taken.size) {
      throw new StoreConflictError("23514", "a customer's count would pass maxPerCustomer");
    }
    if (written.events !== 1)
      throw new StoreConflictError("23514", "the event's counters would pass capacity");
    if (written.tiers !== this.#movedTiers) {
      throw new StoreConflictError("23514", "a ticket type's counters would pass its quota");
    }
  }

  /**
   * Writes a decided change: confirm, release, expire and cancel at once, each guarded on the status
   * it leaves (a row that changed under its lock is a conflict, and the batch commits nothing); new
   * orders and holds are queued for closeBatch, whose guards check them.
   */
  async #write(tx: Transaction, change: Change, now: Date): Promise<void> {
    const eventId = this.#row.id;
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
        const confirmed = await tx.rows(this.#sql.confirmHold, [
          hold.id,
          eventId,
          order.id,
          now,
          order.paymentReference,
        ]);
        if (confirmed.length === 0)
          throw new StoreConflictError("40001", `hold ${hold.id} changed under its lock`);
        break;
      }
      case "extend-hold": {
        const { hold } = change;
        const extended = await tx.rows(this.#sql.extendHold, [hold.id, eventId, new Date(hold.expiresAt)]);
        if (extended.length === 0)
          throw new StoreConflictError("40001", `hold ${hold.id} changed under its lock`);
        break;
      }
      case "end-hold": {
        const { hold } = change;
        const ended = await tx.rows(this.#sql.endHold, [hold.id, eventId, hold.status]);
        if (ended.length === 0)
          throw new StoreConflictError("40001", `hold ${hold.id} changed under its lock`);
        break;
      }
      case "cancel": {
        const { order } = change;
        const cancelled = await tx.rows(this.#sql.cancelOrder, [order.id, eventId, now]);
        if (cancelled.length === 0) {
          throw new StoreConflictError("40001", `order ${order.id} changed under its lock`);
        }
        break;
      }
    }
    this.#tally.apply(change);
    this.#outbox.push(...messagesOfChange(this.#row.id, change, now));
  }
}
