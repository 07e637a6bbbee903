/**
 * The PostgreSQL store: the scale-out backend, on the same contract as SQLite. Many instances on many
 * hosts share one database; every rule is enforced by a guarded statement or a constraint (see
 * postgres-statements.ts and migrations/), under READ COMMITTED, with `synchronous_commit = on` for every
 * write so that a confirmed sale is on disk before the answer.
 *
 * No session state is kept across transactions (every setting is transaction-local, every advisory lock
 * is transaction-scoped, statements are unnamed), so it works behind PgBouncer in transaction mode.
 *
 * No value ever becomes SQL text: every statement is a constant with bound parameters ($1 …), batches
 * bind arrays (unnest($3::text[], …)), and the statements of one round trip travel as one pipeline of
 * parameterised statements (postgres-pipeline.ts). A command the store cannot take (checkCommand) is
 * refused alone before any statement; one that the database still refuses for its data
 * (isCommandDataError) sends the batch down the slow path, one command at a time under a savepoint
 * each, so that only that command fails.
 */
import pg from "pg";
import type { Event, EventPlan, SeatMap } from "../../domain/event.js";
import { parseSeatId, seatsOf } from "../../domain/event.js";
import type { DomainRefusal } from "../../domain/errors.js";
import { isEventId, newHoldId, newOrderId } from "../../domain/ids.js";
import type { Command, Hold, Order, Outcome, Selection } from "../../domain/sale.js";
import { checkCommand, checkSelection } from "../../domain/sale.js";
import { LockBusyError, LockLostError } from "../../domain/lock-errors.js";
import type { WriteGuard } from "../../domain/write-guard.js";
import type { EventPage, Store } from "../store.js";
import { FencedOutError, StoreUnavailableError } from "../store-errors.js";
import { advisoryKeyFor } from "../../postgres/advisory-key.js";
import { isCommandDataError, sqlStateOf, StoreConflictError, toStoreError } from "./postgres-errors.js";
import { migrate } from "./postgres-migrations.js";
import type { PipelineStatement } from "./postgres-pipeline.js";
import { runPipeline } from "./postgres-pipeline.js";
import type { EventRow, HoldRow, OrderRow, Statements } from "./postgres-statements.js";
import { buildStatements } from "./postgres-statements.js";
import type { PostgresStoreConfig } from "./postgres-store-config.js";

const DEFAULT_SCHEMA = "boxoffice";
const DEFAULT_CONNECT_TIMEOUT_MS = 2000;
/** The client gives up on a statement this long after the server should have cancelled it itself. */
const CLIENT_TIMEOUT_SLACK_MS = 2000;
/** Idempotency keys pruned per call at most. */
const PRUNE_BATCH = 5000;
const SCHEMA_NAME = /^[A-Za-z_][A-Za-z0-9_]{0,62}$/;

/** What a transaction's work runs statements through. */
interface Transaction {
  rows<R = Record<string, unknown>>(text: string, values?: readonly unknown[]): Promise<R[]>;
  /** Several parameterised statements in one round trip; the rows of each. */
  pipeline(statements: readonly PipelineStatement[]): Promise<OpeningRows>;
}

/** The rows of each statement a transaction sent with its BEGIN, in order. */
type OpeningRows = unknown[][];

type CustomerRow = { customer_id: string; tickets: number };
type SeatClaimRow = { seat_id: string; owner_id: string };

/** What a command that the database refused for its data answers, on the slow path. */
const CANNOT_TAKE: DomainRefusal = {
  code: "invalid_request",
  detail: "the store cannot take this request as it is",
};

/** A stored first answer to an idempotency key. */
interface StoredAnswer {
  key: string;
  fingerprint: string;
  outcome: StoredOutcome;
}

/**
 * One execute() as it goes: the locked event, what was read about it after the lock, and what the batch
 * will write at the end. The maps hold only what this batch's commands ask about, kept up to date as
 * each command is decided, so that every command is decided exactly as if it ran alone, in order.
 */
interface Batch {
  row: EventRow;
  soldDelta: number;
  heldDelta: number;
  /** Stored first answers to this batch's keys, and the ones it adds. */
  answers: Map<string, StoredAnswer>;
  newAnswers: StoredAnswer[];
  /** Tickets in active holds + confirmed orders, per customer that takes tickets in this batch. */
  tickets: Map<string, number>;
  /** The hold or order that has each requested seat; absent when free. */
  seatOwners: Map<string, string>;
  /** To write at the end: new orders and holds, their seats, and each customer's added tickets. */
  sales: {
    id: string;
    customerId: string;
    quantity: number;
    seats: string[] | null;
    kind: "order" | "hold";
    at: Date;
  }[];
  claims: { seatId: string; ownerId: string; sold: boolean }[];
  taken: Map<string, number>;
}

type Result = { ok: true; value: Order | Hold } | { ok: false; refusal: DomainRefusal };
/** An Outcome as stored for an idempotency key: `replayed` is added on the way out. */
type StoredOutcome = { ok: true; value: Order | Hold | null } | { ok: false; refusal: DomainRefusal };

export class PostgresStore implements Store {
  readonly #config: PostgresStoreConfig;
  readonly #connectionString: string;
  readonly #schema: string;
  readonly #sql: Statements;
  #pool: pg.Pool | null = null;

  constructor(config: PostgresStoreConfig) {
    const url = new URL(config.url);
    const schema = config.schema ?? url.searchParams.get("schema") ?? DEFAULT_SCHEMA;
    if (!SCHEMA_NAME.test(schema)) throw new TypeError(`not a schema name: "${schema}"`);
    url.searchParams.delete("schema");
    this.#config = config;
    this.#connectionString = url.toString();
    this.#schema = schema;
    this.#sql = buildStatements(pg.escapeIdentifier(schema));
  }

  async init(): Promise<void> {
    if (this.#pool) return;
    const pool = new pg.Pool({
      connectionString: this.#connectionString,
      max: this.#config.poolSize,
      connectionTimeoutMillis: this.#config.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
      idleTimeoutMillis: 10_000,
      // Backstop for a server that stops answering altogether (the server's own statement_timeout
      // cannot fire then); such a client is destroyed, never reused.
      query_timeout: this.#config.statementTimeoutMs + CLIENT_TIMEOUT_SLACK_MS,
      keepAlive: true,
      application_name: "boxoffice",
    });
    // An idle connection that dies (server restart) is dropped by the pool; the next checkout reconnects.
    pool.on("error", () => undefined);
    this.#pool = pool;
    try {
      const client = await this.#connect();
      let broken: Error | undefined;
      try {
        await migrate(client, this.#schema, pg.escapeIdentifier(this.#schema));
      } catch (error) {
        broken = error instanceof Error ? error : undefined;
        throw toStoreError(error, "migrating");
      } finally {
        this.#release(client, broken);
      }
    } catch (error) {
      // Not open after all: a later init() starts over.
      this.#pool = null;
      await pool.end().catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    const pool = this.#pool;
    this.#pool = null;
    await pool?.end();
  }

  async ping(): Promise<void> {
    await this.#read([{ text: "SELECT 1" }]);
  }

  async createEvent(plan: EventPlan): Promise<Event> {
    await this.#transaction(null, (tx) =>
      tx.rows(this.#sql.insertEvent, [
        plan.id,
        plan.name,
        plan.kind,
        plan.capacity,
        plan.sections === null ? null : JSON.stringify(plan.sections),
        plan.maxPerOrder,
        plan.maxPerCustomer,
        plan.startsAt,
        plan.createdAt,
      ]),
    );
    return { ...plan, sold: 0, held: 0, available: plan.capacity };
  }

  async getEvent(eventId: string): Promise<Event | null> {
    const [[row]] = await this.#read<[EventRow]>([{ text: this.#sql.selectEvent, values: [eventId] }]);
    return row ? toEvent(row) : null;
  }

  async listEvents(page: { limit: number; cursor: string | null }): Promise<EventPage> {
    const [rows] = await this.#read<[EventRow]>([
      { text: this.#sql.listEvents, values: [page.cursor ?? "", page.limit + 1] },
    ]);
    const events = rows.slice(0, page.limit);
    const last = events.at(-1);
    return { events: events.map(toEvent), nextCursor: rows.length > page.limit && last ? last.id : null };
  }

  async getSeatMap(eventId: string): Promise<SeatMap | null> {
    // One read-only transaction: the event and its claims at the same instant.
    const [[row], claims] = await this.#read<[EventRow, { seat_id: string; sold: boolean }]>([
      { text: this.#sql.selectEvent, values: [eventId] },
      { text: this.#sql.selectSeatClaims, values: [eventId] },
    ]);
    if (!row) return null;
    const status = new Map(claims.map((claim) => [claim.seat_id, claim.sold ? "sold" : "held"] as const));
    const map: SeatMap = { sections: [] };
    const sections = new Map<string, SeatMap["sections"][number]>();
    for (const seat of seatsOf({ sections: row.sections })) {
      let section = sections.get(seat.section);
      if (!section) {
        section = { name: seat.section, rows: [] };
        sections.set(seat.section, section);
        map.sections.push(section);
      }
      let seatRow = section.rows.at(-1);
      if (seatRow?.row !== seat.row) {
        seatRow = { row: seat.row, seats: [] };
        section.rows.push(seatRow);
      }
      seatRow.seats.push({ id: seat.id, status: status.get(seat.id) ?? "available" });
    }
    return map;
  }

  async getOrder(orderId: string): Promise<Order | null> {
    const [[row]] = await this.#read<[OrderRow]>([{ text: this.#sql.selectOrder, values: [orderId] }]);
    return row ? toOrder(row) : null;
  }

  async getHold(holdId: string): Promise<Hold | null> {
    const [[row]] = await this.#read<[HoldRow]>([{ text: this.#sql.selectHold, values: [holdId] }]);
    return row ? toHold(row) : null;
  }

  /**
   * Commands the store cannot take (checkCommand) are refused first, alone, without a statement. The
   * rest run as one batch (#executeBatch); should the database still refuse the batch for one command's
   * data, the batch runs again one command at a time (#executeOneByOne), so only that command fails.
   */
  async execute(
    eventId: string,
    commands: readonly Command[],
    guard: WriteGuard | null,
    now: Date,
  ): Promise<Outcome[]> {
    if (!isEventId(eventId)) return commands.map(() => eventNotFound(eventId));
    const outcomes: (Outcome | null)[] = commands.map((command) => {
      const refusal = checkCommand(command);
      return refusal ? { ok: false, refusal, replayed: false } : null;
    });
    const takeable = commands.filter((_, i) => outcomes[i] === null);
    if (takeable.length > 0) {
      let taken: Outcome[];
      try {
        taken = await this.#executeBatch(eventId, takeable, guard, now);
      } catch (error) {
        if (!isCommandDataError(error)) throw error;
        taken = await this.#executeOneByOne(eventId, takeable, guard, now);
      }
      let next = 0;
      for (let i = 0; i < outcomes.length; i++) outcomes[i] ??= taken[next++] as Outcome;
    }
    return outcomes as Outcome[];
  }

  /**
   * One transaction in three round trips, whatever the number of commands that only take tickets:
   * (1) BEGIN, its settings, the fence, the event row lock, and what the batch decides on (stored
   *     idempotency answers, the customers' counts, the requested seats' claims), as one pipeline: each
   *     statement sees what committed before it ran, so all of it is read with the lock held;
   * (2) one statement for all new orders, holds, seats, counts, answers and counters (confirm, release
   *     and cancel add one statement each before it, on rows committed earlier; overdue holds, when the
   *     event has some, one statement to expire them and one to read again);
   * (3) COMMIT.
   */
  async #executeBatch(
    eventId: string,
    commands: readonly Command[],
    guard: WriteGuard | null,
    now: Date,
  ): Promise<Outcome[]> {
    // What purchases and holds are decided on; read again after an expiry gave tickets back.
    const decidingReads = this.#decidingReads(eventId, commands);
    return this.#transaction(
      guard,
      async (tx, results) => {
        const opened = this.#opened(guard, eventId, results);
        if (!opened.row) return commands.map(() => eventNotFound(eventId));
        const [answerRows, customerRows, seatRows] = opened.rest as [
          StoredAnswer[],
          CustomerRow[],
          SeatClaimRow[],
        ];
        let deciding: OpeningRows = [customerRows, seatRows];
        if (opened.row.has_due) {
          await this.#expireDue(tx, opened.row, now);
          deciding = await tx.pipeline(decidingReads);
        }
        const batch = newBatch(opened.row, answerRows, deciding);
        const outcomes: Outcome[] = [];
        for (const command of commands) outcomes.push(await this.#applyCommand(tx, batch, command, now));
        await this.#closeBatch(tx, batch, now);
        return outcomes;
      },
      [
        ...this.#openingStatements(guard, eventId, now),
        this.#answersRead(eventId, commands),
        ...decidingReads,
      ],
    );
  }

  /**
   * The slow path, for a batch the database refused because of one command's data: the same
   * transaction (fence, event lock, expiry), but each command decided on fresh reads and written under
   * a savepoint of its own. A command whose statements the database refuses for their data is rolled
   * back to its savepoint and refused alone (CANNOT_TAKE); every other command's outcome is what it
   * would have been in the batch. A round trip or four per command: it only runs after such a refusal.
   */
  async #executeOneByOne(
    eventId: string,
    commands: readonly Command[],
    guard: WriteGuard | null,
    now: Date,
  ): Promise<Outcome[]> {
    return this.#transaction(
      guard,
      async (tx, results) => {
        const opened = this.#opened(guard, eventId, results);
        if (!opened.row) return commands.map(() => eventNotFound(eventId));
        if (opened.row.has_due) await this.#expireDue(tx, opened.row, now);
        const outcomes: Outcome[] = [];
        for (const command of commands) {
          await tx.rows("SAVEPOINT command");
          try {
            const [[row], answerRows, ...deciding] = (await tx.pipeline([
              { text: this.#sql.selectEvent, values: [eventId] },
              this.#answersRead(eventId, [command]),
              ...this.#decidingReads(eventId, [command]),
            ])) as [EventRow[], StoredAnswer[], ...OpeningRows];
            if (!row) throw new StoreConflictError("40001", `event ${eventId} vanished under its lock`);
            const batch = newBatch(row, answerRows, deciding);
            const outcome = await this.#applyCommand(tx, batch, command, now);
            await this.#closeBatch(tx, batch, now);
            await tx.rows("RELEASE SAVEPOINT command");
            outcomes.push(outcome);
          } catch (error) {
            if (!isCommandDataError(error)) throw error;
            await tx.rows("ROLLBACK TO SAVEPOINT command");
            outcomes.push({ ok: false, refusal: CANNOT_TAKE, replayed: false });
          }
        }
        return outcomes;
      },
      this.#openingStatements(guard, eventId, now),
    );
  }

  /** The fence (when the guard has one) and the event row lock: the start of every write of an event. */
  #openingStatements(guard: WriteGuard | null, eventId: string, now: Date): PipelineStatement[] {
    const statements: PipelineStatement[] = [];
    if (guard && guard.fence !== null) {
      statements.push(
        { text: this.#sql.applyFence, values: [guard.lockKey, guard.fence, eventId] },
        { text: this.#sql.selectFence, values: [guard.lockKey] },
      );
    }
    statements.push({ text: this.#sql.lockEvent, values: [eventId, now] });
    return statements;
  }

  /** The rows of #openingStatements checked (a stale fence throws), then the rows after them. */
  #opened(
    guard: WriteGuard | null,
    eventId: string,
    results: OpeningRows,
  ): { row: (EventRow & { has_due: boolean }) | undefined; rest: OpeningRows } {
    let next = 0;
    const fenced = guard !== null && guard.fence !== null;
    const applied = fenced ? (results[next++] ?? []) : [];
    const [highest] = (fenced ? (results[next++] ?? []) : []) as { fence: string | null }[];
    const [row] = (results[next++] ?? []) as (EventRow & { has_due: boolean })[];
    // No fence row is written for an event that does not exist: that is not a stale fence.
    if (guard && guard.fence !== null && row && applied.length === 0) {
      throw new FencedOutError(guard.lockKey, guard.fence, Number(highest?.fence ?? guard.fence));
    }
    return { row, rest: results.slice(next) };
  }

  /** The stored first answers to the commands' idempotency keys. */
  #answersRead(eventId: string, commands: readonly Command[]): PipelineStatement {
    const keys = new Set<string>();
    for (const command of commands) {
      if ("idempotency" in command && command.idempotency) keys.add(command.idempotency.key);
    }
    return { text: this.#sql.selectIdempotency, values: [eventId, [...keys]] };
  }

  /** The customers' counts and the requested seats' claims, that purchases and holds are decided on. */
  #decidingReads(eventId: string, commands: readonly Command[]): PipelineStatement[] {
    const customers = new Set<string>();
    const seats = new Set<string>();
    for (const command of commands) {
      if (command.type === "purchase" || command.type === "hold") {
        customers.add(command.customerId);
        for (const seat of command.selection.seats ?? []) seats.add(seat);
      }
    }
    return [
      { text: this.#sql.selectCustomers, values: [eventId, [...customers]] },
      { text: this.#sql.selectSeatOwners, values: [eventId, [...seats]] },
    ];
  }

  /** Expires the (locked) event's overdue holds and takes what they gave back off the row's count. */
  async #expireDue(tx: Transaction, row: EventRow, now: Date): Promise<void> {
    const [expired] = await tx.rows<{ tickets: number }>(this.#sql.expireHolds, [[row.id], now, 1_000_000]);
    row.held -= expired?.tickets ?? 0;
  }

  async expireHolds(now: Date, limit: number): Promise<number> {
    return this.#transaction(null, async (tx) => {
      const events = await tx.rows<{ id: string }>(this.#sql.lockEventsWithDueHolds, [now, limit]);
      if (events.length === 0) return 0;
      const ids = events.map((event) => event.id);
      const [expired] = await tx.rows<{ holds: number }>(this.#sql.expireHolds, [ids, now, limit]);
      return expired?.holds ?? 0;
    });
  }

  async pruneFences(idleBefore: Date): Promise<number> {
    const [pruned] = await this.#transaction(null, (tx) =>
      tx.rows<{ pruned: number }>(this.#sql.pruneFences, [idleBefore.getTime() * 1000]),
    );
    return pruned?.pruned ?? 0;
  }

  /** Removes at most PRUNE_BATCH keys a call; the caller repeats while it returns a full batch. */
  async pruneIdempotency(olderThan: Date): Promise<number> {
    const removed = await this.#transaction(null, (tx) =>
      tx.rows(this.#sql.pruneIdempotency, [olderThan, PRUNE_BATCH]),
    );
    return removed.length;
  }

  /** One command, with its idempotency key: a stored first answer is replayed, a new one kept. */
  async #applyCommand(tx: Transaction, batch: Batch, command: Command, now: Date): Promise<Outcome> {
    const idempotency = "idempotency" in command ? command.idempotency : null;
    if (idempotency !== null) {
      const stored = batch.answers.get(idempotency.key);
      if (stored) {
        if (stored.fingerprint === idempotency.fingerprint) return { ...stored.outcome, replayed: true };
        return {
          ok: false,
          refusal: { code: "idempotency_key_reused", detail: "this key was used with a different request" },
          replayed: false,
        };
      }
    }
    const result = await this.#decide(tx, batch, command, now);
    if (idempotency !== null) {
      const answer = { key: idempotency.key, fingerprint: idempotency.fingerprint, outcome: result };
      batch.answers.set(idempotency.key, answer);
      batch.newAnswers.push(answer);
    }
    return { ...result, replayed: false };
  }

  async #decide(tx: Transaction, batch: Batch, command: Command, now: Date): Promise<Result> {
    switch (command.type) {
      case "purchase":
        return take(batch, "order", command.customerId, command.selection, now, 0);
      case "hold":
        return take(batch, "hold", command.customerId, command.selection, now, command.ttlSeconds);
      case "confirm-hold":
        return this.#confirmHold(tx, batch, command.holdId, now);
      case "release-hold":
        return this.#releaseHold(tx, batch, command.holdId);
      case "cancel-order":
        return this.#cancelOrder(tx, batch, command.orderId, now);
    }
  }

  /** Writes what the batch took, its new answers and its counters, in one statement (closeBatch). */
  async #closeBatch(tx: Transaction, batch: Batch, now: Date): Promise<void> {
    const nothing =
      batch.sales.length === 0 &&
      batch.newAnswers.length === 0 &&
      batch.soldDelta === 0 &&
      batch.heldDelta === 0;
    if (nothing) return;
    const [written] = await tx.rows<{ customers: number; events: number }>(this.#sql.closeBatch, [
      batch.row.id,
      now,
      batch.sales.map((sale) => sale.id),
      batch.sales.map((sale) => sale.customerId),
      batch.sales.map((sale) => sale.quantity),
      batch.sales.map((sale) => (sale.seats === null ? null : JSON.stringify(sale.seats))),
      batch.sales.map((sale) => sale.kind),
      batch.sales.map((sale) => sale.at),
      batch.claims.map((claim) => claim.seatId),
      batch.claims.map((claim) => claim.ownerId),
      batch.claims.map((claim) => claim.sold),
      [...batch.taken.keys()],
      [...batch.taken.values()],
      batch.row.max_per_customer,
      batch.newAnswers.map((answer) => answer.key),
      batch.newAnswers.map((answer) => answer.fingerprint),
      batch.newAnswers.map((answer) => JSON.stringify(answer.outcome)),
      batch.soldDelta,
      batch.heldDelta,
    ]);
    // A guard that refused means someone wrote to this event without its row lock: commit nothing.
    if (written?.customers !== batch.taken.size) {
      throw new StoreConflictError("23514", "a customer's count would pass maxPerCustomer");
    }
    if (written.events !== 1)
      throw new StoreConflictError("23514", "the event's counters would pass capacity");
  }

  async #confirmHold(tx: Transaction, batch: Batch, holdId: string, now: Date): Promise<Result> {
    const [hold] = await tx.rows<HoldRow>(this.#sql.lockHold, [holdId, batch.row.id]);
    if (!hold) return { ok: false, refusal: { code: "hold_not_found", detail: "no such hold" } };
    if (hold.status === "active" && hold.expires_at.getTime() <= now.getTime()) {
      await this.#endHold(tx, batch, hold, "expired");
    }
    if (hold.status === "expired") {
      return { ok: false, refusal: { code: "hold_expired", detail: "the hold expired" } };
    }
    if (hold.status !== "active") {
      return { ok: false, refusal: { code: "hold_not_active", detail: `the hold is ${hold.status}` } };
    }
    const orderId = newOrderId(batch.row.id, now.getTime());
    const confirmed = await tx.rows(this.#sql.confirmHold, [holdId, batch.row.id, orderId, now]);
    if (confirmed.length === 0)
      throw new StoreConflictError("40001", `hold ${holdId} changed under its lock`);
    batch.heldDelta -= hold.quantity;
    batch.soldDelta += hold.quantity;
    for (const seat of hold.seats ?? []) {
      if (batch.seatOwners.get(seat) === hold.id) batch.seatOwners.set(seat, orderId);
    }
    const order: Order = {
      id: orderId,
      eventId: batch.row.id,
      customerId: hold.customer_id,
      quantity: hold.quantity,
      seats: hold.seats,
      status: "confirmed",
      createdAt: now.toISOString(),
      cancelledAt: null,
    };
    return { ok: true, value: order };
  }

  async #releaseHold(tx: Transaction, batch: Batch, holdId: string): Promise<Result> {
    const [hold] = await tx.rows<HoldRow>(this.#sql.lockHold, [holdId, batch.row.id]);
    if (!hold) return { ok: false, refusal: { code: "hold_not_found", detail: "no such hold" } };
    if (hold.status === "active") await this.#endHold(tx, batch, hold, "released");
    return { ok: true, value: toHold(hold) };
  }

  /** Ends an active hold and gives its tickets back; updates `hold` and the batch to match. */
  async #endHold(
    tx: Transaction,
    batch: Batch,
    hold: HoldRow,
    status: "released" | "expired",
  ): Promise<void> {
    const ended = await tx.rows(this.#sql.endHold, [hold.id, batch.row.id, status]);
    if (ended.length === 0) throw new StoreConflictError("40001", `hold ${hold.id} changed under its lock`);
    batch.heldDelta -= hold.quantity;
    giveBack(batch, hold.id, hold.customer_id, hold.quantity, hold.seats);
    hold.status = status;
  }

  async #cancelOrder(tx: Transaction, batch: Batch, orderId: string, now: Date): Promise<Result> {
    const [order] = await tx.rows<OrderRow>(this.#sql.lockOrder, [orderId, batch.row.id]);
    if (!order) return { ok: false, refusal: { code: "order_not_found", detail: "no such order" } };
    if (order.status === "confirmed") {
      const cancelled = await tx.rows(this.#sql.cancelOrder, [orderId, batch.row.id, now]);
      if (cancelled.length === 0) {
        throw new StoreConflictError("40001", `order ${orderId} changed under its lock`);
      }
      batch.soldDelta -= order.quantity;
      giveBack(batch, order.id, order.customer_id, order.quantity, order.seats);
      order.status = "cancelled";
      order.cancelled_at = now;
    }
    return { ok: true, value: toOrder(order) };
  }

  /**
   * A pooled connection; give it back with #release. A connection that dies while checked out also emits
   * 'error' on the client (beside failing the running query): without a listener that would crash the
   * process, so one is attached until the client goes back to the pool.
   */
  async #connect(): Promise<pg.PoolClient> {
    const pool = this.#pool;
    if (!pool) throw new StoreUnavailableError("the PostgreSQL store is not open");
    try {
      const client = await pool.connect();
      client.on("error", ignoreClientError);
      return client;
    } catch (error) {
      throw toStoreError(error, "waiting for a connection");
    }
  }

  /** Back to the pool, or destroyed when its connection failed. */
  #release(client: pg.PoolClient, broken: Error | undefined): void {
    client.off("error", ignoreClientError);
    client.release(broken);
  }

  /**
   * Runs `work` in one READ COMMITTED transaction with one durable commit. The first round trip sets the
   * transaction up: `synchronous_commit = on` (a sale is on disk before the answer, whatever the server's
   * default), the statement timeout, and, for a lock provider that locks inside the transaction, the
   * advisory lock with its bounded wait. Before COMMIT the guard's signal is checked: a writer whose
   * lease was lost commits nothing.
   */
  async #transaction<T>(
    guard: WriteGuard | null,
    work: (tx: Transaction, opening: OpeningRows) => Promise<T>,
    opening: readonly PipelineStatement[] = [],
  ): Promise<T> {
    const client = await this.#connect();
    // A client whose connection failed (no SQLSTATE, or a protocol error) is destroyed on release.
    let broken: Error | undefined;
    const noteBroken = (error: unknown): void => {
      if (isConnectionFailure(error)) broken = error as Error;
    };
    const tx: Transaction = {
      rows: async <R>(text: string, values?: readonly unknown[]) => {
        try {
          const result = await client.query(text, values as unknown[] | undefined);
          return result.rows as R[];
        } catch (error) {
          noteBroken(error);
          throw error;
        }
      },
      pipeline: async (statements: readonly PipelineStatement[]) => {
        try {
          return await runPipeline(client, statements);
        } catch (error) {
          noteBroken(error);
          throw error;
        }
      },
    };
    let begun = false;
    try {
      const prelude = this.#prelude(guard);
      const results = await tx.pipeline([...prelude, ...opening]);
      begun = true;
      const result = await work(tx, results.slice(prelude.length));
      if (guard?.signal.aborted) throw new LockLostError(guard.lockKey);
      await tx.rows("COMMIT");
      return result;
    } catch (error) {
      // Never leave a transaction open on a connection that goes back to the pool.
      if (!broken) await tx.rows("ROLLBACK").catch(noteBroken);
      if (!begun && guard?.transactionLock && sqlStateOf(error) === "55P03") {
        throw new LockBusyError(guard.lockKey, guard.transactionLock.waitMs);
      }
      throw toStoreError(error, "running a transaction");
    } finally {
      this.#release(client, broken);
    }
  }

  /**
   * Read-only statements in one transaction and one round trip (BEGIN, statement timeout, the reads,
   * COMMIT): the reads see one instant. Returns the rows of each read.
   */
  async #read<R extends unknown[]>(reads: readonly PipelineStatement[]): Promise<{ [K in keyof R]: R[K][] }> {
    const client = await this.#connect();
    let broken: Error | undefined;
    const prelude: PipelineStatement[] = [
      { text: "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY" },
      {
        text: "SELECT set_config('statement_timeout', $1, true)",
        values: [String(Math.max(1, Math.trunc(this.#config.statementTimeoutMs)))],
      },
    ];
    try {
      const results = await runPipeline(client, [...prelude, ...reads, { text: "COMMIT" }]);
      return results.slice(prelude.length, prelude.length + reads.length) as { [K in keyof R]: R[K][] };
    } catch (error) {
      if (isConnectionFailure(error)) broken = error as Error;
      else
        await client.query("ROLLBACK").catch((failed: unknown) => {
          if (isConnectionFailure(failed)) broken = failed as Error;
        });
      throw toStoreError(error, "reading");
    } finally {
      this.#release(client, broken);
    }
  }

  /**
   * BEGIN and the transaction's settings: `synchronous_commit = on` (a sale is on disk before the
   * answer), the statement timeout, and an idle-in-transaction timeout: a client that stops
   * mid-transaction (paused, partitioned) must not keep the event row and its advisory lock forever,
   * the server ends such a transaction on its own. With a transaction lock, the advisory lock within
   * its bounded wait.
   */
  #prelude(guard: WriteGuard | null): PipelineStatement[] {
    const statementTimeoutMs = Math.max(1, Math.trunc(this.#config.statementTimeoutMs));
    const statements: PipelineStatement[] = [
      { text: "BEGIN ISOLATION LEVEL READ COMMITTED" },
      {
        text: `SELECT set_config('synchronous_commit', 'on', true),
                      set_config('statement_timeout', $1, true),
                      set_config('idle_in_transaction_session_timeout', $2, true)`,
        values: [String(statementTimeoutMs), String(Math.max(1000, 2 * statementTimeoutMs))],
      },
    ];
    if (guard?.transactionLock) {
      const waitMs = Math.max(1, Math.trunc(guard.transactionLock.waitMs));
      statements.push(
        { text: "SELECT set_config('lock_timeout', $1, true)", values: [String(waitMs)] },
        {
          text: "SELECT pg_advisory_xact_lock($1::bigint)",
          values: [advisoryKeyFor(guard.lockKey).toString()],
        },
        { text: "SET LOCAL lock_timeout TO DEFAULT" },
      );
    }
    return statements;
  }
}

/** The query that was running has already failed with the same error; the client is released as broken. */
function ignoreClientError(): void {}

/**
 * Whether the connection is no longer fit for another transaction: an error without a SQLSTATE (the
 * socket failed, the client timed out, pg could not send) or a protocol violation (08P01), after which
 * client and server may disagree about where a message begins.
 */
function isConnectionFailure(error: unknown): boolean {
  const sqlState = sqlStateOf(error);
  return (sqlState === null || sqlState === "08P01") && error instanceof Error;
}

function eventNotFound(eventId: string): Outcome {
  return { ok: false, refusal: { code: "event_not_found", detail: `no event ${eventId}` }, replayed: false };
}

/** A batch on the locked event row, from what was read after the lock: answers, customers, seats. */
function newBatch(row: EventRow, answerRows: StoredAnswer[], [customerRows, seatRows]: OpeningRows): Batch {
  return {
    row,
    soldDelta: 0,
    heldDelta: 0,
    answers: new Map(answerRows.map((answer) => [answer.key, answer])),
    tickets: new Map(
      ((customerRows ?? []) as CustomerRow[]).map((customer) => [customer.customer_id, customer.tickets]),
    ),
    seatOwners: new Map(((seatRows ?? []) as SeatClaimRow[]).map((seat) => [seat.seat_id, seat.owner_id])),
    newAnswers: [],
    sales: [],
    claims: [],
    taken: new Map(),
  };
}

function available(batch: Batch): number {
  const row = batch.row;
  return row.capacity - (row.sold + batch.soldDelta) - (row.held + batch.heldDelta);
}

/**
 * A purchase or a new hold, decided on what the batch read under the event lock, with the reference
 * model's checks in its order (src/domain/inventory.ts); the writes wait for closeBatch.
 */
function take(
  batch: Batch,
  kind: "order" | "hold",
  customerId: string,
  selection: Selection,
  now: Date,
  ttlSeconds: number,
): Result {
  const row = batch.row;
  const shape = checkSelection(selection, { kind: row.kind, maxPerOrder: row.max_per_order });
  if (shape) return { ok: false, refusal: shape };
  if (selection.seats !== null) {
    const sections = row.sections ?? [];
    const unknown = selection.seats.filter((id) => parseSeatId(id, sections) === null);
    if (unknown.length > 0) {
      return {
        ok: false,
        refusal: { code: "invalid_request", detail: `no such seat: ${unknown.join(", ")}` },
      };
    }
    const seats = selection.seats.filter((id) => batch.seatOwners.has(id));
    if (seats.length > 0) {
      return {
        ok: false,
        refusal: { code: "seats_unavailable", detail: `seats held or sold: ${seats.join(", ")}`, seats },
      };
    }
  } else if (selection.quantity > available(batch)) {
    return {
      ok: false,
      refusal: { code: "sold_out", detail: `fewer than ${selection.quantity} tickets left` },
    };
  }
  const tickets = batch.tickets.get(customerId) ?? 0;
  if (tickets + selection.quantity > row.max_per_customer) {
    return {
      ok: false,
      refusal: {
        code: "customer_limit_reached",
        detail: `at most ${row.max_per_customer} tickets per customer for this event`,
      },
    };
  }
  const id = kind === "order" ? newOrderId(row.id, now.getTime()) : newHoldId(row.id, now.getTime());
  const at = kind === "order" ? now : new Date(now.getTime() + ttlSeconds * 1000);
  batch.tickets.set(customerId, tickets + selection.quantity);
  batch.taken.set(customerId, (batch.taken.get(customerId) ?? 0) + selection.quantity);
  for (const seat of selection.seats ?? []) {
    batch.seatOwners.set(seat, id);
    batch.claims.push({ seatId: seat, ownerId: id, sold: kind === "order" });
  }
  batch.sales.push({ id, customerId, quantity: selection.quantity, seats: selection.seats, kind, at });
  const common = { id, eventId: row.id, customerId, quantity: selection.quantity, seats: selection.seats };
  if (kind === "order") {
    batch.soldDelta += selection.quantity;
    return {
      ok: true,
      value: { ...common, status: "confirmed", createdAt: now.toISOString(), cancelledAt: null },
    };
  }
  batch.heldDelta += selection.quantity;
  return { ok: true, value: { ...common, status: "active", expiresAt: at.toISOString() } };
}

/** What a cancelled order or an ended hold gives back, as the batch sees it (the statement wrote it). */
function giveBack(
  batch: Batch,
  ownerId: string,
  customerId: string,
  quantity: number,
  seats: string[] | null,
): void {
  const tickets = batch.tickets.get(customerId);
  if (tickets !== undefined) batch.tickets.set(customerId, tickets - quantity);
  for (const seat of seats ?? []) {
    if (batch.seatOwners.get(seat) === ownerId) batch.seatOwners.delete(seat);
  }
}

function toEvent(row: EventRow): Event {
  return {
    id: row.id,
    name: row.name,
    kind: row.kind,
    capacity: row.capacity,
    sold: row.sold,
    held: row.held,
    available: row.capacity - row.sold - row.held,
    maxPerOrder: row.max_per_order,
    maxPerCustomer: row.max_per_customer,
    startsAt: row.starts_at === null ? null : row.starts_at.toISOString(),
    createdAt: row.created_at.toISOString(),
  };
}

function toOrder(row: OrderRow): Order {
  return {
    id: row.id,
    eventId: row.event_id,
    customerId: row.customer_id,
    quantity: row.quantity,
    seats: row.seats,
    status: row.status,
    createdAt: row.created_at.toISOString(),
    cancelledAt: row.cancelled_at === null ? null : row.cancelled_at.toISOString(),
  };
}

function toHold(row: HoldRow): Hold {
  return {
    id: row.id,
    eventId: row.event_id,
    customerId: row.customer_id,
    quantity: row.quantity,
    seats: row.seats,
    status: row.status,
    expiresAt: row.expires_at.toISOString(),
  };
}
