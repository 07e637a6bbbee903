/**
 * The PostgreSQL store: the scale-out backend, on the same contract as SQLite. Many instances on many
 * hosts share one database; every rule is enforced by a guarded statement or a constraint (see
 * postgres-statements.ts and migrations/), under READ COMMITTED, with `synchronous_commit = on` for every
 * write so that a confirmed sale is on disk before the answer.
 *
 * No session state is kept across transactions (every SET is `SET LOCAL`, every advisory lock is
 * transaction-scoped, statements are unnamed), so it works behind PgBouncer in transaction mode.
 */
import pg from "pg";
import type { Event, EventPlan, SeatMap } from "../../domain/event.js";
import { parseSeatId, seatsOf } from "../../domain/event.js";
import type { DomainRefusal } from "../../domain/errors.js";
import { newHoldId, newOrderId } from "../../domain/ids.js";
import type { Command, Hold, Order, Outcome, Selection } from "../../domain/sale.js";
import { checkSelection } from "../../domain/sale.js";
import { LockBusyError, LockLostError } from "../../lock/lock-errors.js";
import type { EventPage, Store, WriteGuard } from "../store.js";
import { FencedOutError, StoreUnavailableError } from "../store-errors.js";
import { advisoryKeyFor } from "../../lock/postgres/postgres-lock.js";
import { sqlStateOf, StoreConflictError, toStoreError } from "./postgres-errors.js";
import { migrate } from "./postgres-migrations.js";
import type { EventRow, HoldRow, OrderRow, Statements } from "./postgres-statements.js";
import { buildStatements, inline } from "./postgres-statements.js";

export interface PostgresStoreConfig {
  /** postgres://user@host:port/db; an optional `?schema=name` picks the schema (default "boxoffice"). */
  url: string;
  /** Connections this instance keeps at most. */
  poolSize: number;
  /** Server-side limit on each statement (SET LOCAL statement_timeout); a stuck statement ends in 503. */
  statementTimeoutMs: number;
  /** How long to wait for a free pooled connection, or for a new one, before StoreUnavailableError. */
  connectTimeoutMs?: number;
  /** The schema holding the tables; overrides `?schema=` in the URL. */
  schema?: string;
}

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
  /** Several statements with their values inlined, in one round trip; the rows of each. */
  simple(statements: readonly string[]): Promise<OpeningRows>;
}

/** The rows of each statement a transaction sent with its BEGIN, in order. */
type OpeningRows = unknown[][];

type CustomerRow = { customer_id: string; tickets: number };
type SeatClaimRow = { seat_id: string; owner_id: string };

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
    await this.#read(["SELECT 1"]);
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
    const [[row]] = await this.#read<[EventRow]>([this.#inline(this.#sql.selectEvent, [eventId])]);
    return row ? toEvent(row) : null;
  }

  async listEvents(page: { limit: number; cursor: string | null }): Promise<EventPage> {
    const [rows] = await this.#read<[EventRow]>([
      this.#inline(this.#sql.listEvents, [page.cursor ?? "", page.limit + 1]),
    ]);
    const events = rows.slice(0, page.limit);
    const last = events.at(-1);
    return { events: events.map(toEvent), nextCursor: rows.length > page.limit && last ? last.id : null };
  }

  async getSeatMap(eventId: string): Promise<SeatMap | null> {
    // One read-only transaction: the event and its claims at the same instant.
    const [[row], claims] = await this.#read<[EventRow, { seat_id: string; sold: boolean }]>([
      this.#inline(this.#sql.selectEvent, [eventId]),
      this.#inline(this.#sql.selectSeatClaims, [eventId]),
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
    const [[row]] = await this.#read<[OrderRow]>([this.#inline(this.#sql.selectOrder, [orderId])]);
    return row ? toOrder(row) : null;
  }

  async getHold(holdId: string): Promise<Hold | null> {
    const [[row]] = await this.#read<[HoldRow]>([this.#inline(this.#sql.selectHold, [holdId])]);
    return row ? toHold(row) : null;
  }

  /**
   * One transaction in three round trips, whatever the number of commands that only take tickets:
   * (1) BEGIN, its settings, the fence, the event row lock, and what the batch decides on (stored
   *     idempotency answers, the customers' counts, the requested seats' claims), as one message: each
   *     statement sees what committed before it ran, so all of it is read with the lock held;
   * (2) one statement for all new orders, holds, seats, counts, answers and counters (confirm, release
   *     and cancel add one statement each before it, on rows committed earlier; overdue holds, when the
   *     event has some, one statement to expire them and one to read again);
   * (3) COMMIT.
   */
  async execute(
    eventId: string,
    commands: readonly Command[],
    guard: WriteGuard | null,
    now: Date,
  ): Promise<Outcome[]> {
    const keys = new Set<string>();
    const customers = new Set<string>();
    const seats = new Set<string>();
    for (const command of commands) {
      if ("idempotency" in command && command.idempotency) keys.add(command.idempotency.key);
      if (command.type === "purchase" || command.type === "hold") {
        customers.add(command.customerId);
        for (const seat of command.selection.seats ?? []) seats.add(seat);
      }
    }
    const fence = guard?.fence ?? null;
    const opening: string[] = [];
    if (guard && fence !== null) {
      opening.push(
        this.#inline(this.#sql.applyFence, [guard.lockKey, fence, eventId]),
        this.#inline(this.#sql.selectFence, [guard.lockKey]),
      );
    }
    // What purchases and holds are decided on; read again after an expiry gave tickets back.
    const decidingReads = [
      this.#inline(this.#sql.selectCustomers, [eventId, [...customers]]),
      this.#inline(this.#sql.selectSeatOwners, [eventId, [...seats]]),
    ];
    opening.push(
      this.#inline(this.#sql.lockEvent, [eventId, now]),
      this.#inline(this.#sql.selectIdempotency, [eventId, [...keys]]),
      ...decidingReads,
    );

    return this.#transaction(
      guard,
      async (tx, results) => {
        let next = 0;
        const fenced = guard && fence !== null;
        const applied = fenced ? (results[next++] ?? []) : [];
        const [highest] = (fenced ? (results[next++] ?? []) : []) as { fence: string | null }[];
        const [row] = (results[next++] ?? []) as (EventRow & { has_due: boolean })[];
        // No fence row is written for an event that does not exist: that is not a stale fence.
        if (guard && fence !== null && row && applied.length === 0) {
          throw new FencedOutError(guard.lockKey, fence, Number(highest?.fence ?? fence));
        }
        const answerRows = (results[next++] ?? []) as StoredAnswer[];
        let [customerRows, seatRows] = results.slice(next) as [CustomerRow[], SeatClaimRow[]];
        if (!row) {
          return commands.map(() => ({
            ok: false as const,
            refusal: { code: "event_not_found" as const, detail: `no event ${eventId}` },
            replayed: false,
          }));
        }
        if (row.has_due) {
          const [expired] = await tx.rows<{ tickets: number }>(this.#sql.expireHolds, [
            [eventId],
            now,
            1_000_000,
          ]);
          row.held -= expired?.tickets ?? 0;
          [customerRows, seatRows] = (await tx.simple(decidingReads)) as [CustomerRow[], SeatClaimRow[]];
        }
        const batch: Batch = {
          row,
          soldDelta: 0,
          heldDelta: 0,
          answers: new Map(answerRows.map((answer) => [answer.key, answer])),
          tickets: new Map((customerRows ?? []).map((customer) => [customer.customer_id, customer.tickets])),
          seatOwners: new Map((seatRows ?? []).map((seat) => [seat.seat_id, seat.owner_id])),
          newAnswers: [],
          sales: [],
          claims: [],
          taken: new Map(),
        };
        const outcomes: Outcome[] = [];
        for (const command of commands) outcomes.push(await this.#applyCommand(tx, batch, command, now));
        await this.#closeBatch(tx, batch, now);
        return outcomes;
      },
      opening,
    );
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
    opening: readonly string[] = [],
  ): Promise<T> {
    const client = await this.#connect();
    // A client whose connection failed (no SQLSTATE) is destroyed on release, never reused.
    let broken: Error | undefined;
    const tx: Transaction = {
      rows: async <R>(text: string, values?: readonly unknown[]) => {
        try {
          const result = await client.query(text, values as unknown[] | undefined);
          return result.rows as R[];
        } catch (error) {
          if (sqlStateOf(error) === null && error instanceof Error) broken = error;
          throw error;
        }
      },
      simple: (statements: readonly string[]) =>
        this.#simpleQuery(client, statements, (error) => {
          broken = error;
        }),
    };
    let begun = false;
    try {
      const prelude = this.#prelude(guard);
      const results = await this.#simpleQuery(client, [...prelude, ...opening], (error) => {
        broken = error;
      });
      begun = true;
      const result = await work(tx, results.slice(prelude.length));
      if (guard?.signal.aborted) throw new LockLostError(guard.lockKey);
      await tx.rows("COMMIT");
      return result;
    } catch (error) {
      if (!broken) await tx.rows("ROLLBACK").catch(() => undefined);
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
  async #read<R extends unknown[]>(reads: readonly string[]): Promise<{ [K in keyof R]: R[K][] }> {
    const client = await this.#connect();
    let broken: Error | undefined;
    const prelude = ["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", this.#statementTimeout()];
    try {
      const results = await this.#simpleQuery(client, [...prelude, ...reads, "COMMIT"], (error) => {
        broken = error;
      });
      return results.slice(prelude.length, prelude.length + reads.length) as { [K in keyof R]: R[K][] };
    } catch (error) {
      if (!broken) await client.query("ROLLBACK").catch(() => undefined);
      throw toStoreError(error, "reading");
    } finally {
      this.#release(client, broken);
    }
  }

  /** A statement with its values written in as literals, for #read and the opening of execute(). */
  #inline(text: string, values: Parameters<typeof inline>[1]): string {
    return inline(text, values, (value) => pg.escapeLiteral(value));
  }

  /**
   * Several statements in one round trip (the simple protocol: no parameters, values already inlined).
   * Each runs with its own snapshot, in order; the first error stops the rest.
   */
  async #simpleQuery(
    client: pg.PoolClient,
    statements: readonly string[],
    onBroken: (error: Error) => void,
  ): Promise<OpeningRows> {
    try {
      // With more than one statement, pg answers with one result per statement.
      const results = (await client.query(statements.join(";\n"))) as unknown as pg.QueryResult[];
      return (Array.isArray(results) ? results : [results]).map((result) => result.rows);
    } catch (error) {
      if (sqlStateOf(error) === null && error instanceof Error) onBroken(error);
      throw error;
    }
  }

  /** BEGIN and the transaction's settings (only numbers inlined). */
  #prelude(guard: WriteGuard | null): string[] {
    const statements = [
      "BEGIN ISOLATION LEVEL READ COMMITTED",
      "SET LOCAL synchronous_commit TO on",
      this.#statementTimeout(),
      // A client that stops mid-transaction (paused, partitioned) must not keep the event row and its
      // advisory lock forever: the server ends such a transaction on its own.
      `SET LOCAL idle_in_transaction_session_timeout TO ${Math.max(1000, 2 * Math.trunc(this.#config.statementTimeoutMs))}`,
    ];
    if (guard?.transactionLock) {
      const waitMs = Math.max(1, Math.trunc(guard.transactionLock.waitMs));
      statements.push(
        `SET LOCAL lock_timeout TO ${waitMs}`,
        `SELECT pg_advisory_xact_lock(${advisoryKeyFor(guard.lockKey).toString()})`,
        "SET LOCAL lock_timeout TO DEFAULT",
      );
    }
    return statements;
  }

  #statementTimeout(): string {
    return `SET LOCAL statement_timeout TO ${Math.max(1, Math.trunc(this.#config.statementTimeoutMs))}`;
  }
}

/** The query that was running has already failed with the same error; the client is released as broken. */
function ignoreClientError(): void {}

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
