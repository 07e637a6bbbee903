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
import { advisoryKeyFor } from "./postgres-advisory-key.js";
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
}

/** The rows of each statement a transaction sent with its BEGIN, in order. */
type OpeningRows = unknown[][];

/** The event as one execute() sees it: locked, with counters it keeps up to date as commands apply. */
interface EventState {
  row: EventRow;
  soldDelta: number;
  heldDelta: number;
}

/** The first answers to idempotency keys: those stored before, and those this batch adds. */
interface Answers {
  stored: Map<string, { fingerprint: string; outcome: StoredOutcome }>;
  added: { key: string; fingerprint: string; outcome: string }[];
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
   * One transaction: BEGIN, its settings, the fence, the event row lock and the stored idempotency answers
   * go in one round trip (each statement of it sees what committed before it ran, so the answers are read
   * after the lock is held); then one statement per command; then the new answers and the counters in
   * one statement; then COMMIT. The hot event's row stays locked only for the last three.
   */
  async execute(
    eventId: string,
    commands: readonly Command[],
    guard: WriteGuard | null,
    now: Date,
  ): Promise<Outcome[]> {
    const keys = [
      ...new Set(commands.flatMap((c) => ("idempotency" in c && c.idempotency ? [c.idempotency.key] : []))),
    ];
    const fence = guard?.fence ?? null;
    const opening: string[] = [];
    if (guard && fence !== null) {
      opening.push(
        this.#inline(this.#sql.applyFence, [guard.lockKey, fence]),
        this.#inline(this.#sql.selectFence, [guard.lockKey]),
      );
    }
    opening.push(this.#inline(this.#sql.lockEvent, [eventId, now]));
    if (keys.length > 0) opening.push(this.#inline(this.#sql.selectIdempotency, [eventId, keys]));

    return this.#transaction(
      guard,
      async (tx, results) => {
        let next = 0;
        if (guard && fence !== null) {
          const applied = results[next++] ?? [];
          const [highest] = (results[next++] ?? []) as { fence: string }[];
          if (applied.length === 0)
            throw new FencedOutError(guard.lockKey, fence, Number(highest?.fence ?? fence));
        }
        const [row] = (results[next++] ?? []) as (EventRow & { has_due: boolean })[];
        if (!row) {
          return commands.map(() => ({
            ok: false as const,
            refusal: { code: "event_not_found" as const, detail: `no event ${eventId}` },
            replayed: false,
          }));
        }
        const storedRows = (results[next++] ?? []) as {
          key: string;
          fingerprint: string;
          outcome: StoredOutcome;
        }[];
        const answers: Answers = { stored: new Map(storedRows.map((r) => [r.key, r])), added: [] };
        if (row.has_due) {
          const [expired] = await tx.rows<{ tickets: number }>(this.#sql.expireHolds, [
            [eventId],
            now,
            1_000_000,
          ]);
          row.held -= expired?.tickets ?? 0;
        }
        const event: EventState = { row, soldDelta: 0, heldDelta: 0 };
        const outcomes: Outcome[] = [];
        for (const command of commands)
          outcomes.push(await this.#applyCommand(tx, event, answers, command, now));
        if (answers.added.length > 0 || event.soldDelta !== 0 || event.heldDelta !== 0) {
          const updated = await tx.rows(this.#sql.closeBatch, [
            eventId,
            answers.added.map((a) => a.key),
            answers.added.map((a) => a.fingerprint),
            answers.added.map((a) => a.outcome),
            now,
            event.soldDelta,
            event.heldDelta,
          ]);
          // Cannot happen while every writer locks the event row first; if it does, nothing is committed.
          if (updated.length === 0) throw new StoreConflictError("23514", "event counters out of bounds");
        }
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

  /** Removes at most PRUNE_BATCH keys a call; the caller repeats while it returns a full batch. */
  async pruneIdempotency(olderThan: Date): Promise<number> {
    const removed = await this.#transaction(null, (tx) =>
      tx.rows(this.#sql.pruneIdempotency, [olderThan, PRUNE_BATCH]),
    );
    return removed.length;
  }

  /** One command, with its idempotency key: a stored first answer is replayed, a new one kept. */
  async #applyCommand(
    tx: Transaction,
    event: EventState,
    answers: Answers,
    command: Command,
    now: Date,
  ): Promise<Outcome> {
    const idempotency = "idempotency" in command ? command.idempotency : null;
    if (idempotency !== null) {
      const stored = answers.stored.get(idempotency.key);
      if (stored) {
        if (stored.fingerprint === idempotency.fingerprint) return { ...stored.outcome, replayed: true };
        return {
          ok: false,
          refusal: { code: "idempotency_key_reused", detail: "this key was used with a different request" },
          replayed: false,
        };
      }
    }
    const result = await this.#decide(tx, event, command, now);
    if (idempotency !== null) {
      const outcome = JSON.stringify(result);
      answers.stored.set(idempotency.key, { fingerprint: idempotency.fingerprint, outcome: result });
      answers.added.push({ key: idempotency.key, fingerprint: idempotency.fingerprint, outcome });
    }
    return { ...result, replayed: false };
  }

  async #decide(tx: Transaction, event: EventState, command: Command, now: Date): Promise<Result> {
    switch (command.type) {
      case "purchase":
        return this.#take(tx, event, "order", command.customerId, command.selection, now, 0);
      case "hold":
        return this.#take(tx, event, "hold", command.customerId, command.selection, now, command.ttlSeconds);
      case "confirm-hold":
        return this.#confirmHold(tx, event, command.holdId, now);
      case "release-hold":
        return this.#releaseHold(tx, event, command.holdId);
      case "cancel-order":
        return this.#cancelOrder(tx, event, command.orderId, now);
    }
  }

  /** A purchase or a new hold: the same checks, in the reference model's order, then one guarded write. */
  async #take(
    tx: Transaction,
    event: EventState,
    kind: "order" | "hold",
    customerId: string,
    selection: Selection,
    now: Date,
    ttlSeconds: number,
  ): Promise<Result> {
    const row = event.row;
    const limits = { kind: row.kind, maxPerOrder: row.max_per_order };
    const shape = checkSelection(selection, limits);
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
    } else if (selection.quantity > available(event)) {
      return {
        ok: false,
        refusal: { code: "sold_out", detail: `fewer than ${selection.quantity} tickets left` },
      };
    }
    const id = kind === "order" ? newOrderId(row.id, now.getTime()) : newHoldId(row.id, now.getTime());
    const expiresAt = new Date(now.getTime() + ttlSeconds * 1000);
    const [taken] = await tx.rows<{ taken: string[]; id: string | null }>(this.#sql.takeTickets, [
      row.id,
      customerId,
      selection.quantity,
      row.max_per_customer,
      id,
      selection.seats ?? [],
      selection.seats,
      kind === "order" ? now : expiresAt,
      kind,
    ]);
    if (selection.seats !== null && taken && taken.taken.length > 0) {
      const takenIds = new Set(taken.taken);
      const seats = selection.seats.filter((seat) => takenIds.has(seat));
      return {
        ok: false,
        refusal: { code: "seats_unavailable", detail: `seats held or sold: ${seats.join(", ")}`, seats },
      };
    }
    if (!taken?.id) {
      return {
        ok: false,
        refusal: {
          code: "customer_limit_reached",
          detail: `at most ${row.max_per_customer} tickets per customer for this event`,
        },
      };
    }
    const common = { id, eventId: row.id, customerId, quantity: selection.quantity, seats: selection.seats };
    if (kind === "order") {
      event.soldDelta += selection.quantity;
      const order: Order = {
        ...common,
        status: "confirmed",
        createdAt: now.toISOString(),
        cancelledAt: null,
      };
      return { ok: true, value: order };
    }
    event.heldDelta += selection.quantity;
    const hold: Hold = { ...common, status: "active", expiresAt: expiresAt.toISOString() };
    return { ok: true, value: hold };
  }

  async #confirmHold(tx: Transaction, event: EventState, holdId: string, now: Date): Promise<Result> {
    const [hold] = await tx.rows<HoldRow>(this.#sql.lockHold, [holdId, event.row.id]);
    if (!hold) return { ok: false, refusal: { code: "hold_not_found", detail: "no such hold" } };
    if (hold.status === "active" && hold.expires_at.getTime() <= now.getTime()) {
      await this.#endHold(tx, event, hold, "expired");
    }
    if (hold.status === "expired") {
      return { ok: false, refusal: { code: "hold_expired", detail: "the hold expired" } };
    }
    if (hold.status !== "active") {
      return { ok: false, refusal: { code: "hold_not_active", detail: `the hold is ${hold.status}` } };
    }
    const orderId = newOrderId(event.row.id, now.getTime());
    const confirmed = await tx.rows(this.#sql.confirmHold, [holdId, event.row.id, orderId, now]);
    if (confirmed.length === 0)
      throw new StoreConflictError("40001", `hold ${holdId} changed under its lock`);
    event.heldDelta -= hold.quantity;
    event.soldDelta += hold.quantity;
    const order: Order = {
      id: orderId,
      eventId: event.row.id,
      customerId: hold.customer_id,
      quantity: hold.quantity,
      seats: hold.seats,
      status: "confirmed",
      createdAt: now.toISOString(),
      cancelledAt: null,
    };
    return { ok: true, value: order };
  }

  async #releaseHold(tx: Transaction, event: EventState, holdId: string): Promise<Result> {
    const [hold] = await tx.rows<HoldRow>(this.#sql.lockHold, [holdId, event.row.id]);
    if (!hold) return { ok: false, refusal: { code: "hold_not_found", detail: "no such hold" } };
    if (hold.status === "active") await this.#endHold(tx, event, hold, "released");
    return { ok: true, value: toHold(hold) };
  }

  /** Ends an active hold and gives its tickets back; updates `hold` to match. */
  async #endHold(
    tx: Transaction,
    event: EventState,
    hold: HoldRow,
    status: "released" | "expired",
  ): Promise<void> {
    const ended = await tx.rows(this.#sql.endHold, [hold.id, event.row.id, status]);
    if (ended.length === 0) throw new StoreConflictError("40001", `hold ${hold.id} changed under its lock`);
    event.heldDelta -= hold.quantity;
    hold.status = status;
  }

  async #cancelOrder(tx: Transaction, event: EventState, orderId: string, now: Date): Promise<Result> {
    const [order] = await tx.rows<OrderRow>(this.#sql.lockOrder, [orderId, event.row.id]);
    if (!order) return { ok: false, refusal: { code: "order_not_found", detail: "no such order" } };
    if (order.status === "confirmed") {
      const cancelled = await tx.rows(this.#sql.cancelOrder, [orderId, event.row.id, now]);
      if (cancelled.length === 0)
        throw new StoreConflictError("40001", `order ${orderId} changed under its lock`);
      event.soldDelta -= order.quantity;
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

function available(event: EventState): number {
  const row = event.row;
  return row.capacity - (row.sold + event.soldDelta) - (row.held + event.heldDelta);
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
