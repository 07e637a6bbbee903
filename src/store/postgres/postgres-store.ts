/**
 * The PostgreSQL store: the scale-out backend, on the same contract as SQLite. Many instances on many
 * hosts share one database; every rule is enforced by a guarded statement or a constraint (see
 * postgres-statements.ts and migrations/), under READ COMMITTED, with `synchronous_commit = on` for every
 * write so that a confirmed sale is on disk before the answer.
 *
 * No session state is kept across transactions (every setting is transaction-local, every advisory lock
 * is transaction-scoped, statements are unnamed: the plans the server keeps are those of the functions
 * close_batch and deciding_of, migration 006, inside its connection), so it works behind PgBouncer in
 * transaction mode.
 *
 * By role: postgres-pool.ts runs transactions and reads; postgres-statements.ts is the SQL;
 * postgres-batch.ts decides a batch's commands (with the domain's decider) and writes them;
 * postgres-mappers.ts turns rows into domain records. This file puts them together behind Store.
 *
 * No value ever becomes SQL text: every statement is a constant with bound parameters ($1 …), batches
 * bind arrays (unnest($3::text[], …)), and the statements of one round trip travel as one pipeline of
 * parameterised statements (postgres-pipeline.ts). A command the store cannot take (checkCommand) is
 * refused alone before any statement; one that the database still refuses for its data
 * (isCommandDataError) sends the batch down the slow path, one command at a time under a savepoint
 * each, so that only that command fails.
 */
import pg from "pg";
import type { Event, EventPlan, EventUpdate, SeatMap } from "../../domain/event.js";
import { planEventUpdate, seatsOf } from "../../domain/event.js";
import type { EventReport } from "../../domain/report.js";
import { reportOf } from "../../domain/report.js";
import type { EventAction } from "../../domain/sale-window.js";
import { nextStatus, saleStateOf } from "../../domain/sale-window.js";
import { isEventId } from "../../domain/ids.js";
import { refusals } from "../../domain/refusals.js";
import type { Command, Hold, Order, Outcome } from "../../domain/sale.js";
import { checkCommand } from "../../domain/sale.js";
import type { WriteGuard } from "../../domain/write-guard.js";
import type {
  AdminOutcome,
  EventBatch,
  EventBatchResult,
  EventPage,
  OrderFilter,
  OrderPage,
  Store,
} from "../store.js";
import { BoxofficeError } from "../../domain/errors.js";
import { LockBusyError, LockLostError } from "../../domain/lock-errors.js";
import type { WaitingRoomStore } from "../waiting-room-store.js";
import { PostgresWaitingRoom } from "./postgres-waiting-room.js";
import { FencedOutError, SchemaBehindError } from "../store-errors.js";
import type { ClosePart } from "./postgres-batch.js";
import { closeStatement, PostgresBatch } from "./postgres-batch.js";
import { advisoryKeyFor } from "../../postgres/advisory-key.js";
import {
  batchGuardEventOf,
  isCommandDataError,
  sqlStateOf,
  StoreConflictError,
  toStoreError,
} from "./postgres-errors.js";
import type {
  EventRow,
  HoldRow,
  IdempotencyRow,
  LockedEventRow,
  OrderRow,
  TierRow,
} from "./postgres-mappers.js";
import { tierCountsOf, toEvent, toHold, toOrder, toPlan } from "./postgres-mappers.js";
import { checkSchemaVersion, migrate } from "./postgres-migrations.js";
import type { PipelineStatement } from "./postgres-pipeline.js";
import { failedStatementOf } from "./postgres-pipeline.js";
import type { OpeningRows, Transaction } from "./postgres-pool.js";
import {
  failedOpeningOf,
  isCommitFailure,
  PostgresPool,
  transactionLockStatements,
} from "./postgres-pool.js";
import type { Statements } from "./postgres-statements.js";
import { buildStatements } from "./postgres-statements.js";
import type { PostgresStoreConfig } from "./postgres-store-config.js";
import { PostgresWebhooks } from "./postgres-webhooks.js";
import type { Line } from "../../domain/pricing.js";
import { legacyLines } from "../../domain/pricing.js";
import type { OutboxMessage } from "../../domain/webhook.js";
import { outboxMessage, stateChangedMessage } from "../../domain/webhook.js";
import type { Hold as HoldRecord } from "../../domain/sale.js";
import { postgresTarget } from "./postgres-store-config.js";

/** Idempotency keys pruned per call at most. */
const PRUNE_BATCH = 5000;

export class PostgresStore implements Store {
  readonly #schema: string;
  readonly #sql: Statements;
  readonly #pool: PostgresPool;
  /** Webhook endpoints and deliveries; the outbox rows are written by execute() and expireHolds(). */
  readonly webhooks: PostgresWebhooks;
  /** The waiting rooms, in the store's schema. */
  readonly waitingRoom: WaitingRoomStore;
  readonly #migrations: "apply" | "check";

  constructor(config: PostgresStoreConfig) {
    const { connectionString, schema } = postgresTarget(config);
    this.#schema = schema;
    this.#migrations = config.migrations ?? "apply";
    this.#sql = buildStatements(pg.escapeIdentifier(schema));
    this.#pool = new PostgresPool({
      connectionString,
      poolSize: config.poolSize,
      statementTimeoutMs: config.statementTimeoutMs,
      connectTimeoutMs: config.connectTimeoutMs,
    });
    this.webhooks = new PostgresWebhooks(this.#pool, pg.escapeIdentifier(schema));
    this.waitingRoom = new PostgresWaitingRoom(this.#pool, pg.escapeIdentifier(schema));
  }

  async init(): Promise<void> {
    if (this.#pool.isOpen) return;
    this.#pool.open();
    try {
      const client = await this.#pool.connect();
      let broken: Error | undefined;
      try {
        if (this.#migrations === "apply") {
          await migrate(client, this.#schema, pg.escapeIdentifier(this.#schema));
        } else {
          await checkSchemaVersion(client, this.#schema);
        }
      } catch (error) {
        if (error instanceof SchemaBehindError) throw error;
        broken = error instanceof Error ? error : undefined;
        throw toStoreError(error, this.#migrations === "apply" ? "migrating" : "checking the schema");
      } finally {
        this.#pool.release(client, broken);
      }
    } catch (error) {
      // Not open after all: a later init() starts over.
      await this.#pool.end().catch(() => undefined);
      throw error;
    }
  }

  async close(): Promise<void> {
    await this.#pool.end();
  }

  async ping(): Promise<void> {
    await this.#pool.read([{ text: "SELECT 1" }]);
  }

  async createEvent(plan: EventPlan): Promise<Event> {
    const row = await this.#pool.transaction(null, async (tx) => {
      await tx.rows(this.#sql.insertEvent, [
        plan.id,
        plan.name,
        plan.kind,
        plan.capacity,
        plan.sections === null ? null : JSON.stringify(plan.sections),
        plan.maxPerOrder,
        plan.maxPerCustomer,
        plan.startsAt,
        plan.createdAt,
        plan.description,
        plan.status,
        plan.salesStartAt,
        plan.salesEndAt,
        plan.confirmHoldsWhilePaused,
        plan.maxHoldLifetimeSeconds,
        plan.currency,
        JSON.stringify(plan.tiers),
      ]);
      await tx.rows(this.#sql.insertTiers, [
        plan.id,
        plan.tiers.map((tier) => tier.id),
        plan.tiers.map((tier) => tier.quota),
      ]);
      const [created] = await tx.rows<EventRow>(this.#sql.selectEvent, [plan.id]);
      return created;
    });
    if (!row) throw new StoreConflictError("40001", `event ${plan.id} vanished after its creation`);
    return toEvent(row);
  }

  async changeEventStatus(eventId: string, action: EventAction): Promise<AdminOutcome | null> {
    if (!isEventId(eventId)) return null;
    return this.#pool.transaction(null, async (tx) => {
      const [row] = await tx.rows<EventRow>(this.#sql.lockEventRow, [eventId]);
      if (!row) return null;
      const status = nextStatus(row.status, action);
      if (typeof status !== "string") return { ok: false, refusal: status };
      if (status !== row.status) await tx.rows(this.#sql.setStatus, [eventId, status]);
      const [after] = await tx.rows<EventRow>(this.#sql.selectEvent, [eventId]);
      if (!after) return null;
      const event = toEvent(after);
      await this.#stateChanged(tx, eventId, toEvent(row).state, event.state);
      return { ok: true, event };
    });
  }

  async updateEvent(eventId: string, update: EventUpdate): Promise<AdminOutcome | null> {
    if (!isEventId(eventId)) return null;
    return this.#pool.transaction(null, async (tx) => {
      const [row] = await tx.rows<EventRow>(this.#sql.lockEventRow, [eventId]);
      if (!row) return null;
      const plan = toPlan(row);
      const next = planEventUpdate(plan, plan, update, row.sold + row.held);
      if ("code" in next) return { ok: false, refusal: next };
      const written = await tx.rows(this.#sql.setSettings, [
        eventId,
        next.name,
        next.description,
        next.capacity,
        next.maxPerOrder,
        next.maxPerCustomer,
        next.salesStartAt,
        next.salesEndAt,
        next.confirmHoldsWhilePaused,
        next.maxHoldLifetimeSeconds,
      ]);
      if (written.length !== 1) {
        return { ok: false, refusal: refusals.capacityBelowTaken(row.sold + row.held) };
      }
      const [after] = await tx.rows<EventRow>(this.#sql.selectEvent, [eventId]);
      if (!after) return null;
      const event = toEvent(after);
      await this.#stateChanged(tx, eventId, toEvent(row).state, event.state);
      return { ok: true, event };
    });
  }

  async getReport(eventId: string): Promise<EventReport | null> {
    if (!isEventId(eventId)) return null;
    const [[row], tiers] = await this.#pool.read<[EventRow, TierRow]>([
      { text: this.#sql.selectEvent, values: [eventId] },
      { text: this.#sql.selectTiers, values: [eventId] },
    ]);
    if (!row) return null;
    const plan = toPlan(row);
    return reportOf(plan, plan, row, tierCountsOf(tiers), saleStateOf(plan, Number(row.clock_ms)));
  }

  async getEvent(eventId: string): Promise<Event | null> {
    const [[row]] = await this.#pool.read<[EventRow]>([{ text: this.#sql.selectEvent, values: [eventId] }]);
    return row ? toEvent(row) : null;
  }

  async listEvents(page: { limit: number; cursor: string | null }): Promise<EventPage> {
    const [rows] = await this.#pool.read<[EventRow]>([
      { text: this.#sql.listEvents, values: [page.cursor ?? "", page.limit + 1] },
    ]);
    const events = rows.slice(0, page.limit);
    const last = events.at(-1);
    return { events: events.map(toEvent), nextCursor: rows.length > page.limit && last ? last.id : null };
  }

  async getSeatMap(eventId: string): Promise<SeatMap | null> {
    // One read-only transaction: the event and its claims at the same instant.
    const [[row], claims] = await this.#pool.read<[EventRow, { seat_id: string; sold: boolean }]>([
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
    const [[row]] = await this.#pool.read<[OrderRow]>([{ text: this.#sql.selectOrder, values: [orderId] }]);
    return row ? toOrder(row) : null;
  }

  async listOrders(
    eventId: string,
    filter: OrderFilter,
    page: { limit: number; cursor: string | null },
  ): Promise<OrderPage | null> {
    // One read-only transaction: whether the event exists and the page, at the same instant.
    const [[event], rows] = await this.#pool.read<[{ found: number }, OrderRow]>([
      { text: this.#sql.eventExists, values: [eventId] },
      {
        text: this.#sql.listOrders,
        values: [
          eventId,
          page.cursor ?? "",
          filter.status ?? null,
          filter.customerId ?? null,
          filter.createdAfter ?? null,
          filter.createdBefore ?? null,
          page.limit + 1,
        ],
      },
    ]);
    if (!event) return null;
    const orders = rows.slice(0, page.limit).map(toOrder);
    return { orders, nextCursor: rows.length > page.limit ? (orders.at(-1)?.id ?? null) : null };
  }

  async getHold(holdId: string): Promise<Hold | null> {
    const [[row]] = await this.#pool.read<[HoldRow]>([{ text: this.#sql.selectHold, values: [holdId] }]);
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
   * Several events' batches in one transaction with one durable commit, in two round trips and a
   * fixed number of statements whatever the number of events (#executeGroup). Locks are taken in one
   * order by every transaction (advisory locks, then fences, then event rows, each sorted by key), so
   * two instances' transactions never deadlock. A part that fails alone (a stale fence, a lost lease, a
   * busy transaction lock, a guard that refused its writes) is taken out and the others run again in a
   * fresh transaction: the failed part's work is rolled back with the first try, the others decide
   * again on fresh reads, so each is applied exactly as execute() alone would apply it. (Rather than a
   * savepoint per part: nested subtransactions past 64 overflow every backend's subtransaction cache;
   * a retry costs only when a part fails.) When the database refuses a statement shared by the parts
   * (one command's data, a constraint), the parts run one after another through execute(), whose slow
   * path fails only that command. A failed commit rejects the whole call.
   */
  async executeMany(batches: readonly EventBatch[], now: Date): Promise<EventBatchResult[]> {
    const results: (EventBatchResult | null)[] = batches.map(() => null);
    const group: GroupPart[] = [];
    batches.forEach((batch, index) => {
      if (!isEventId(batch.eventId)) {
        results[index] = { ok: true, outcomes: batch.commands.map(() => eventNotFound(batch.eventId)) };
        return;
      }
      const outcomes: (Outcome | null)[] = batch.commands.map((command) => {
        const refusal = checkCommand(command);
        return refusal ? { ok: false, refusal, replayed: false } : null;
      });
      const takeable = batch.commands.filter((_, i) => outcomes[i] === null);
      if (takeable.length === 0) results[index] = { ok: true, outcomes: outcomes as Outcome[] };
      else group.push({ index, batch, takeable, outcomes });
    });
    group.sort((a, b) => compareText(a.batch.eventId, b.batch.eventId));
    // For the opening statements of the group's last try, the lock key each advisory lock takes.
    const lockKeys: (string | undefined)[] = [];
    while (group.length > 0) {
      try {
        const taken = await this.#executeGroup(group, now, lockKeys);
        group.forEach((part, i) => {
          let next = 0;
          const outcomes = part.outcomes.map((outcome) => outcome ?? (taken[i]?.[next++] as Outcome));
          results[part.index] = { ok: true, outcomes };
        });
        break;
      } catch (error) {
        const failed = failedParts(group, error, lockKeys);
        if (failed !== null) {
          for (const at of [...failed.at].sort((a, b) => b - a)) {
            const [part] = group.splice(at, 1) as [GroupPart];
            results[part.index] = { ok: false, error: failed.error };
          }
          continue;
        }
        // The connection or the commit failed: nothing of any part may be reported as done.
        if (isCommitFailure(error) || !isStatementError(error)) throw error;
        // A statement the parts share was refused: each part alone, one after another.
        for (const part of group) {
          const { eventId, commands, guard } = part.batch;
          try {
            results[part.index] = { ok: true, outcomes: await this.execute(eventId, commands, guard, now) };
          } catch (alone) {
            results[part.index] = { ok: false, error: alone };
          }
        }
        break;
      }
    }
    return results as EventBatchResult[];
  }

  /**
   * The parts of executeMany() in one transaction of two round trips, with statements that each
   * cover every part (arrays of event ids, keys and customers bound as parameters):
   * (1) BEGIN and its settings, the parts' advisory transaction locks (when their guards have them: a
   *     statement per lock key, in key order), their fences (one statement), their event rows (one,
   *     locked in id order), and what their batches decide on (one statement, decidingOf), as one
   *     pipeline;
   * (2) after every part's lease is checked, every part's confirm, extend, release and cancel writes (a
   *     statement per kind a part has), one closeBatch for all parts and COMMIT, as one pipeline (overdue
   *     holds add their round trips first, as in execute()); a closing statement whose guard refused
   *     names the part's event (batchGuardEventOf).
   * Throws PartFailedError for a part that failed alone; a busy advisory lock is told by
   * failedOpeningOf; anything else fails the group.
   */
  async #executeGroup(group: GroupPart[], now: Date, lockKeys: (string | undefined)[]): Promise<Outcome[][]> {
    const sql = this.#sql;
    const eventIds = group.map((part) => part.batch.eventId);
    const opening: PipelineStatement[] = [];
    lockKeys.length = 0;
    // Advisory transaction locks, one statement per key, in key order, within the first part's wait.
    const locked = group.filter((part) => part.batch.guard?.transactionLock);
    if (locked.length > 0) {
      const keys = [...new Set(locked.map((part) => (part.batch.guard as WriteGuard).lockKey))].sort(
        compareText,
      );
      const [limitWait, , reset] = transactionLockStatements(locked[0]?.batch.guard as WriteGuard);
      opening.push(limitWait as PipelineStatement);
      lockKeys.push(undefined);
      for (const key of keys) {
        opening.push({
          text: "SELECT pg_advisory_xact_lock($1::bigint)",
          values: [advisoryKeyFor(key).toString()],
        });
        lockKeys.push(key);
      }
      opening.push(reset as PipelineStatement);
      lockKeys.push(undefined);
    }
    const fenced = group.filter((part) => part.batch.guard && part.batch.guard.fence !== null);
    if (fenced.length > 0) {
      opening.push({
        text: sql.applyFences,
        values: [
          fenced.map((part) => (part.batch.guard as WriteGuard).lockKey),
          fenced.map((part) => (part.batch.guard as WriteGuard).fence),
          fenced.map((part) => part.batch.eventId),
        ],
      });
    }
    const readsFrom = opening.length;
    const pairs = (pick: (command: Command, eventId: string, add: (value: string) => void) => void) => {
      const ids: string[] = [];
      const values: string[] = [];
      for (const part of group) {
        const seen = new Set<string>();
        for (const command of part.takeable) {
          pick(command, part.batch.eventId, (value) => {
            if (seen.has(value)) return;
            seen.add(value);
            ids.push(part.batch.eventId);
            values.push(value);
          });
        }
      }
      return [ids, values];
    };
    const named = { holds: [] as string[], orders: [] as string[] };
    for (const part of group) {
      for (const command of part.takeable) {
        if (command.type === "cancel-order") named.orders.push(command.orderId);
        else if (command.type !== "purchase" && command.type !== "hold") named.holds.push(command.holdId);
      }
    }
    opening.push(
      { text: sql.lockEvents, values: [eventIds, now] },
      {
        text: sql.decidingOf,
        values: [
          ...pairs((command, _, add) => {
            if ("idempotency" in command && command.idempotency) add(command.idempotency.key);
          }),
          ...pairs((command, _, add) => {
            if (command.type === "purchase" || command.type === "hold") add(command.customerId);
          }),
          ...pairs((command, _, add) => {
            if (command.type === "purchase" || command.type === "hold") {
              for (const seat of command.selection.seats ?? []) add(seat);
            }
          }),
          eventIds,
        ],
      },
    );
    if (named.holds.length > 0 || named.orders.length > 0) {
      opening.push(
        { text: sql.lockHoldsOf, values: [named.holds, eventIds] },
        { text: sql.lockOrdersOf, values: [named.orders, eventIds] },
      );
    }
    return this.#pool.transaction(
      null,
      async (tx, results) => {
        const applied = new Map(
          ((fenced.length > 0 ? results[readsFrom - 1] : []) as { lock_key: string; fence: string }[]).map(
            (row) => [row.lock_key, Number(row.fence)],
          ),
        );
        const [eventRows, [read], holdRows, orderRows] = results.slice(readsFrom) as [
          LockedEventRow[],
          [DecidingRow],
          { event_id: string }[] | undefined,
          { event_id: string }[] | undefined,
        ];
        const { answers: answerRows, customers: customerRows, seats: seatRows, tiers: tierRows } = read;
        const clockRows = [{ clock_ms: read.clock_ms }];
        const rowsOf = <R extends { event_id: string }>(rows: readonly R[] | undefined, eventId: string) =>
          (rows ?? []).filter((row) => row.event_id === eventId);
        const eventsById = new Map(eventRows.map((row) => [row.id, row]));
        const outcomes: Outcome[][] = [];
        const writes: { part: number; statements: PipelineStatement[] }[] = [];
        const closes: ClosePart[] = [];
        for (let i = 0; i < group.length; i++) {
          const { batch: eventBatch, takeable } = group[i] as GroupPart;
          const { eventId, guard } = eventBatch;
          try {
            const row = eventsById.get(eventId);
            if (!row) {
              outcomes.push(takeable.map(() => eventNotFound(eventId)));
              continue;
            }
            // The part's fence must be the one applied for its key (a lower one is stale).
            if (guard && guard.fence !== null && applied.get(guard.lockKey) !== guard.fence) {
              const [highest] = await tx.rows<{ fence: string | null }>(sql.selectFence, [guard.lockKey]);
              throw new FencedOutError(guard.lockKey, guard.fence, Number(highest?.fence ?? guard.fence));
            }
            let deciding: OpeningRows = [
              rowsOf(customerRows, eventId),
              rowsOf(seatRows, eventId),
              rowsOf(tierRows, eventId),
              clockRows,
              rowsOf(holdRows, eventId),
              rowsOf(orderRows, eventId),
            ];
            const answers = rowsOf(answerRows, eventId);
            if (row.has_due) {
              await this.#expireDue(tx, row, now);
              deciding = await tx.pipeline(this.#decidingReads(eventId, takeable));
            }
            const batch = new PostgresBatch(sql, row, answers, deciding);
            outcomes.push(takeable.map((command) => batch.apply(command, now)));
            const statements = batch.closingWrites(now);
            if (statements.length > 0) writes.push({ part: i, statements });
            const close = batch.closePart(now);
            if (close) closes.push(close);
          } catch (error) {
            throw partFailed(i, error);
          }
        }
        const statements = writes.flatMap((write) => write.statements);
        if (closes.length > 0) statements.push(closeStatement(sql, closes, now));
        // Every closing statement fails by itself when one of its guarded writes finds no row to write,
        // so nothing is left to check before COMMIT but the leases: COMMIT goes with them.
        checkLeases(group);
        try {
          await tx.commit(statements);
        } catch (error) {
          // A guard refused one event's rows (batch_guard): that part failed alone.
          const refused = batchGuardEventOf(error);
          const part = group.findIndex((p) => p.batch.eventId === refused);
          if (part >= 0) throw partFailed(part, error);
          let at = failedStatementOf(error);
          if (at === null) throw error;
          for (const write of writes) {
            if (at < write.statements.length) throw partFailed(write.part, error);
            at -= write.statements.length;
          }
          // closeBatch, which all parts share, or the COMMIT: not one part's failure.
          throw error;
        }
        return outcomes;
      },
      opening,
    );
  }

  /**
   * One transaction in two round trips, whatever the number of commands:
   * (1) BEGIN, its settings, the fence, the event row lock, and what the batch decides on (stored
   *     idempotency answers, the customers' counts, the requested seats' claims), as one pipeline: each
   *     statement sees what committed before it ran, so all of it is read with the lock held;
   * (2) one statement for all new orders, holds, seats, counts, answers and counters, after at most one
   *     statement per kind for the batch's extended, confirmed, ended holds and cancelled orders (the
   *     holds and orders its commands name are read with their row locks in (1)), and COMMIT, as one
   *     pipeline (each closing statement fails by itself when a guard refused a write); overdue holds,
   *     when the event has some, add one statement to expire them and one to read again.
   */
  async #executeBatch(
    eventId: string,
    commands: readonly Command[],
    guard: WriteGuard | null,
    now: Date,
  ): Promise<Outcome[]> {
    // What purchases and holds are decided on; read again after an expiry gave tickets back.
    const decidingReads = this.#decidingReads(eventId, commands);
    return this.#pool.transaction(
      guard,
      async (tx, results) => {
        const opened = this.#opened(guard, eventId, results);
        if (!opened.row) return commands.map(() => eventNotFound(eventId));
        const [answerRows, ...readDeciding] = opened.rest as [IdempotencyRow[], ...OpeningRows];
        let deciding = readDeciding;
        if (opened.row.has_due) {
          await this.#expireDue(tx, opened.row, now);
          deciding = await tx.pipeline(decidingReads);
        }
        const batch = new PostgresBatch(this.#sql, opened.row, answerRows, deciding);
        const outcomes = commands.map((command) => batch.apply(command, now));
        await batch.close(tx, now, true);
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
   * back to its savepoint and refused alone (refusals.cannotTake); every other command's outcome is what it
   * would have been in the batch. A round trip or four per command: it only runs after such a refusal.
   */
  async #executeOneByOne(
    eventId: string,
    commands: readonly Command[],
    guard: WriteGuard | null,
    now: Date,
  ): Promise<Outcome[]> {
    return this.#pool.transaction(
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
            ])) as [EventRow[], IdempotencyRow[], ...OpeningRows];
            if (!row) throw new StoreConflictError("40001", `event ${eventId} vanished under its lock`);
            const batch = new PostgresBatch(this.#sql, row, answerRows, deciding);
            const outcome = batch.apply(command, now);
            await batch.close(tx, now, false);
            await tx.rows("RELEASE SAVEPOINT command");
            outcomes.push(outcome);
          } catch (error) {
            if (!isCommandDataError(error)) throw error;
            await tx.rows("ROLLBACK TO SAVEPOINT command");
            outcomes.push({ ok: false, refusal: refusals.cannotTake(), replayed: false });
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
  ): { row: LockedEventRow | undefined; rest: OpeningRows } {
    let next = 0;
    const fenced = guard !== null && guard.fence !== null;
    const applied = fenced ? (results[next++] ?? []) : [];
    const [highest] = (fenced ? (results[next++] ?? []) : []) as { fence: string | null }[];
    const [row] = (results[next++] ?? []) as LockedEventRow[];
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
    const holds = new Set<string>();
    const orders = new Set<string>();
    for (const command of commands) {
      if (command.type === "purchase" || command.type === "hold") {
        customers.add(command.customerId);
        for (const seat of command.selection.seats ?? []) seats.add(seat);
      } else if (command.type === "cancel-order") {
        orders.add(command.orderId);
      } else {
        holds.add(command.holdId);
      }
    }
    const reads: PipelineStatement[] = [
      { text: this.#sql.selectCustomers, values: [eventId, [...customers]] },
      { text: this.#sql.selectSeatOwners, values: [eventId, [...seats]] },
      { text: this.#sql.selectTiers, values: [eventId] },
      { text: this.#sql.clock, values: [] },
    ];
    // The named holds and orders, with their row locks; a batch of purchases alone reads neither.
    if (holds.size > 0 || orders.size > 0) {
      reads.push(
        { text: this.#sql.lockHolds, values: [[...holds], eventId] },
        { text: this.#sql.lockOrders, values: [[...orders], eventId] },
      );
    }
    return reads;
  }

  /** Expires the (locked) event's overdue holds and takes what they gave back off the row's count. */
  async #expireDue(tx: Transaction, row: EventRow, now: Date): Promise<void> {
    const [expired] = await tx.rows<ExpiredRow>(this.#sql.expireHolds, [[row.id], now, 1_000_000]);
    row.held -= expired?.tickets ?? 0;
    await this.#writeExpiredMessages(tx, expired, now);
  }

  /** hold.expired for each hold an expiry statement expired, in the same transaction. */
  async #writeExpiredMessages(tx: Transaction, expired: ExpiredRow | undefined, now: Date): Promise<void> {
    const messages: OutboxMessage[] = (expired?.expired ?? []).map((h) => {
      const hold: HoldRecord = {
        id: h.id,
        eventId: h.eventId,
        customerId: h.customerId,
        quantity: h.quantity,
        seats: h.seats,
        status: "expired",
        expiresAt: new Date(Number(h.expiresAtMs)).toISOString(),
        createdAt: new Date(Number(h.createdAtMs)).toISOString(),
        lines: h.lines ?? legacyLines(h.quantity, h.seats !== null),
        total: Number(h.total),
        currency: h.currency,
      };
      return outboxMessage(h.eventId, "hold.expired", { hold }, now);
    });
    await this.#appendOutbox(tx, messages, now);
  }

  /**
   * Appends webhook messages to the outbox inside `tx`, the transaction of the change they report: they
   * commit with it or not at all. The hook for changes outside the sell path (a sale's state:
   * `event.state_changed`, domain/webhook.ts stateChangedMessage); docs/architecture.md, "Webhooks".
   */
  /**
   * An admin's action or edit moved the sale's state: `event.state_changed` in the same transaction.
   * (A window that opens or closes by the clock alone writes nothing, so it sends no message.)
   */
  async #stateChanged(tx: Transaction, eventId: string, from: string, to: string): Promise<void> {
    if (from === to) return;
    const now = new Date();
    await this.#appendOutbox(tx, [stateChangedMessage(eventId, { from, to }, now)], now);
  }

  async #appendOutbox(tx: Transaction, messages: readonly OutboxMessage[], now: Date): Promise<void> {
    if (messages.length === 0) return;
    await tx.rows(this.#sql.insertOutbox, [
      messages.map((m) => m.id),
      messages.map((m) => m.eventId),
      messages.map((m) => m.type),
      messages.map((m) => m.payload),
      now,
    ]);
  }

  async expireHolds(now: Date, limit: number): Promise<number> {
    return this.#pool.transaction(null, async (tx) => {
      const events = await tx.rows<{ id: string }>(this.#sql.lockEventsWithDueHolds, [now, limit]);
      if (events.length === 0) return 0;
      const ids = events.map((event) => event.id);
      const [expired] = await tx.rows<ExpiredRow>(this.#sql.expireHolds, [ids, now, limit]);
      await this.#writeExpiredMessages(tx, expired, now);
      return expired?.holds ?? 0;
    });
  }

  async pruneFences(idleBefore: Date): Promise<number> {
    const [pruned] = await this.#pool.transaction(null, (tx) =>
      tx.rows<{ pruned: number }>(this.#sql.pruneFences, [idleBefore.getTime() * 1000]),
    );
    return pruned?.pruned ?? 0;
  }

  /** Removes at most PRUNE_BATCH keys a call; the caller repeats while it returns a full batch. */
  async pruneIdempotency(olderThan: Date): Promise<number> {
    const removed = await this.#pool.transaction(null, (tx) =>
      tx.rows(this.#sql.pruneIdempotency, [olderThan, PRUNE_BATCH]),
    );
    return removed.length;
  }
}

/** decidingOf's one row: each read's rows (as the separate reads would answer them), and the clock. */
interface DecidingRow {
  answers: (IdempotencyRow & { event_id: string })[];
  customers: { event_id: string }[];
  seats: { event_id: string }[];
  tiers: { event_id: string }[];
  clock_ms: number;
}

/** What the expiry statement answers: counts, and the holds it expired. */
interface ExpiredRow {
  holds: number;
  tickets: number;
  expired: {
    id: string;
    eventId: string;
    customerId: string;
    quantity: number;
    seats: string[] | null;
    expiresAtMs: number | string;
    createdAtMs: number | string;
    lines: Line[] | null;
    total: number | string;
    currency: string;
  }[];
}

/** One part of executeMany's group: its batch, the commands it takes, and its refused-first outcomes. */
interface GroupPart {
  /** Its place in executeMany's arguments. */
  index: number;
  batch: EventBatch;
  takeable: Command[];
  outcomes: (Outcome | null)[];
}

/**
 * One part of executeMany's group failed alone (its own error is the cause): the group's transaction
 * is rolled back and runs again without it. A BoxofficeError so that the pool passes it through as is.
 */
class PartFailedError extends BoxofficeError {
  readonly part: number;
  constructor(part: number, cause: unknown) {
    super("STORE_PART_FAILED", `part ${part} of a multi-event transaction failed`, {
      retryable: true,
      cause,
    });
    this.part = part;
  }
}

/**
 * `error` as the failure of part `part` alone, unless it is the connection's: a connection that failed
 * fails every part (and pg's own errors without a SQLSTATE are that).
 */
function partFailed(part: number, error: unknown): unknown {
  if (!(error instanceof BoxofficeError) && sqlStateOf(error) === null) return error;
  return new PartFailedError(part, error);
}

/**
 * Which parts of the group `error` (thrown by #executeGroup) failed alone, with their error; null when
 * it is not one part's. `lockKeys` names the lock key of each advisory lock among the opening statements.
 */
function failedParts(
  group: readonly GroupPart[],
  error: unknown,
  lockKeys: readonly (string | undefined)[],
): { at: number[]; error: unknown } | null {
  if (error instanceof PartFailedError) {
    return { at: [error.part], error: toStoreError(error.cause, "running a transaction") };
  }
  // A transaction lock that stayed busy: every part under that lock key.
  const at = failedOpeningOf(error);
  const lockKey = at === null ? undefined : lockKeys[at];
  if (lockKey === undefined) return null;
  const parts = group.flatMap((part, i) => (part.batch.guard?.lockKey === lockKey ? [i] : []));
  const waitMs = group[parts[0] ?? 0]?.batch.guard?.transactionLock?.waitMs ?? 0;
  const busy = sqlStateOf(error instanceof Error ? (error.cause ?? error) : error) === "55P03";
  return { at: parts, error: busy ? new LockBusyError(lockKey, waitMs) : error };
}

/** A writer whose lease was lost commits nothing: that part is taken out, the others run again. */
function checkLeases(group: readonly GroupPart[]): void {
  group.forEach(({ batch }, i) => {
    if (batch.guard?.signal.aborted) throw new PartFailedError(i, new LockLostError(batch.guard.lockKey));
  });
}

/** Byte order of two ids (the order every transaction takes their locks in). */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** Whether the database refused a statement (a server error with a SQLSTATE), not the connection. */
function isStatementError(error: unknown): boolean {
  if (sqlStateOf(error) !== null) return true;
  return error instanceof BoxofficeError && sqlStateOf(error.cause) !== null;
}

function eventNotFound(eventId: string): Outcome {
  return { ok: false, refusal: refusals.eventNotFound(eventId), replayed: false };
}
