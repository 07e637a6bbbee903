/**
 * The store: where events, orders, holds and idempotency records live. It speaks the domain, never a
 * database: no connection or transaction type crosses this interface. Every backend (sqlite/, postgres/)
 * passes the one contract suite in test/contract/store-contract.ts.
 *
 * Every backend decides a command with the domain's one decider (src/domain/decide.ts) on what it read
 * under the event's write lock, and writes the decision. The database, not the lock, is what forbids
 * overselling: every backend also enforces the inventory rules with guarded writes and constraints, so
 * that a holder that lost its lock still cannot oversell.
 */
import type { DomainRefusal } from "../domain/errors.js";
import type { Event, EventPlan, EventUpdate, SeatMap } from "../domain/event.js";
import type { EventReport } from "../domain/report.js";
import type { EventAction } from "../domain/sale-window.js";
import type { Command, Hold, Order, Outcome } from "../domain/sale.js";
import type { WriteGuard } from "../domain/write-guard.js";
import type { WebhookStore } from "./webhook-store.js";
import type { WaitingRoomStore } from "./waiting-room-store.js";

/** One page of the event list, oldest first. */
export interface EventPage {
  events: Event[];
  nextCursor: string | null;
}

/** What an admin's change of an event came to: the event after it, or the rule that refused it. */
export type AdminOutcome = { ok: true; event: Event } | { ok: false; refusal: DomainRefusal };
/** Which of an event's orders to list; every field narrows, absent fields do not. */
export interface OrderFilter {
  status?: Order["status"];
  customerId?: string;
  /** ISO 8601 instant (as toISOString writes it): orders created at or after it. */
  createdAfter?: string;
  /** ISO 8601 instant (as toISOString writes it): orders created before it. */
  createdBefore?: string;
}

/** One page of an event's orders, in id order (creation order within one process). */
export interface OrderPage {
  orders: Order[];
  /** The id of the page's last order when more may follow; pass it as the next page's cursor. */
  nextCursor: string | null;
}

/** What `boxoffice migrate` did to one database file or schema. */
export interface MigrationReport {
  /** The file or schema, as an operator would name it. */
  target: string;
  /** The migrations applied now, e.g. "event 002"; empty when it was current. */
  applied: string[];
  /** Its schema version afterwards, per part ("catalog", "event", "schema"). */
  versions: Record<string, number>;
}

/** One event's queued commands and the guard of the lock held for them, in a multi-event commit. */
export interface EventBatch {
  eventId: string;
  commands: readonly Command[];
  guard: WriteGuard | null;
}

/** One event's part of executeMany(): its outcomes, or the retryable error that failed that part alone. */
export type EventBatchResult = { ok: true; outcomes: Outcome[] } | { ok: false; error: unknown };

export interface Store {
  /**
   * Webhook endpoints and deliveries (webhook-store.ts). The outbox messages they deliver are written by
   * execute() and expireHolds(), in the same transaction as the change they report.
   */
  readonly webhooks: WebhookStore;

  /** The waiting rooms' queues, kept beside the inventory (waiting-room-store.ts). */
  readonly waitingRoom: WaitingRoomStore;

  /**
   * Opens files or pools and applies pending migrations, or with `migrations: "check"` in its config only
   * checks that none is pending (SchemaBehindError). Call once before anything else.
   */
  init(): Promise<void>;
  /** Closes everything it opened; idempotent. */
  close(): Promise<void>;
  /** Resolves when the store answers; throws StoreUnavailableError otherwise. Used by /ready. */
  ping(): Promise<void>;

  /** Creates an event (and its seats) durably; returns it with sold = held = 0. */
  createEvent(plan: EventPlan): Promise<Event>;
  /** The event with its counters read in one transaction, or null. */
  getEvent(eventId: string): Promise<Event | null>;
  /** Events in creation order, `limit` at a time; `cursor` is the previous page's `nextCursor`. */
  listEvents(page: { limit: number; cursor: string | null }): Promise<EventPage>;
  /**
   * An admin action (publish, pause, resume, close: `nextStatus` in src/domain/sale-window.ts), decided
   * and written in one transaction on the event's sales row, which every selling batch reads in its own
   * transaction: a pause stops every instance's next batch. This is the one place a status changes
   * (hook point: the webhooks outbox records `event.state_changed` here, in the same transaction).
   * Null when there is no such event.
   */
  changeEventStatus(eventId: string, action: EventAction): Promise<AdminOutcome | null>;
  /**
   * An admin's edit (name, description, window, limits, capacity: `planEventUpdate` in
   * src/domain/event.ts), checked against sold + held read in the same transaction that writes it (the
   * database's capacity CHECK refuses it too). A window change may change the sale's state (hook point
   * for `event.state_changed`, as above). Null when there is no such event.
   */
  updateEvent(eventId: string, update: EventUpdate): Promise<AdminOutcome | null>;
  /** Sold, held, available and revenue, in all and per ticket type or price zone; null when no event. */
  getReport(eventId: string): Promise<EventReport | null>;
  /** The seat map of a seated event, or null when there is no such event. Empty sections for general. */
  getSeatMap(eventId: string): Promise<SeatMap | null>;
  getOrder(orderId: string): Promise<Order | null>;
  getHold(holdId: string): Promise<Hold | null>;
  /**
   * The event's orders matching `filter` with an id above `cursor`, in id order, at most `limit`: a
   * keyset page, so a page costs the same however deep it is and an order never shows twice or is
   * skipped while paging (an order created meanwhile shows if its id is past the cursor; a page reads
   * at one instant, not the whole walk). Null when there is no such event.
   */
  listOrders(
    eventId: string,
    filter: OrderFilter,
    page: { limit: number; cursor: string | null },
  ): Promise<OrderPage | null>;

  /**
   * Applies a batch of commands for one event in one transaction with one durable commit, in order;
   * each command gets its own Outcome (a refusal for one never fails the others). A command the store
   * cannot take (`checkCommand` in src/domain/sale.ts: text that is not printable valid Unicode, a
   * malformed seat id, a number out of range) is refused alone, and nothing is stored for its key: no
   * command, whatever it holds, changes another command's Outcome or makes the batch throw. A command
   * with an idempotency key whose first answer is stored gets that answer back (`replayed: true`); the
   * same key with another fingerprint is refused with `idempotency_key_reused`. Overdue holds of the
   * event are expired first, in the same transaction.
   *
   * Throws (and commits nothing) on: no such event → returns `event_not_found` outcomes instead;
   * FencedOutError, LockLostError, StoreUnavailableError — all retryable.
   */
  execute(
    eventId: string,
    commands: readonly Command[],
    guard: WriteGuard | null,
    now: Date,
  ): Promise<Outcome[]>;

  /**
   * Applies several events' batches (distinct events, each under its own lock, held by the caller) with
   * one durable commit where the backend can (one transaction: the single-file layout, PostgreSQL), or
   * with the events' commits running in parallel where it cannot (a file per event). Each part is
   * applied as execute() would apply it alone, with the same Outcomes; a part that fails (fenced out,
   * lock lost, no such event…) is rolled back alone and reports its error while the others commit. A
   * failure of the shared commit rejects the whole call: nothing of it was committed.
   * Optional: a store without it is driven one execute() per event.
   */
  executeMany?(batches: readonly EventBatch[], now: Date): Promise<EventBatchResult[]>;

  /**
   * Expires overdue active holds anywhere, at most `limit` of them, giving each one's tickets back
   * exactly once however many instances sweep at the same time. Returns how many it expired.
   */
  expireHolds(now: Date, limit: number): Promise<number>;

  /** Forgets idempotency records older than `olderThan`. Returns how many it removed. */
  pruneIdempotency(olderThan: Date): Promise<number>;

  /**
   * Set by the instance to hear of failed bookkeeping that a store does not let fail the request it
   * belongs to (the per-event SQLite layout's hold-deadline hints), to log and count it.
   */
  onBookkeepingError?: ((error: unknown, what: string) => void) | undefined;

  /**
   * Forgets the fence of every lock key whose highest applied fence was issued before `idleBefore`
   * (fences are at least their issuer's wall clock in µs), keeping the largest one forgotten as a floor
   * that a key with no fence must reach: a stale holder of a forgotten key is still refused. Returns
   * how many keys it forgot.
   */
  pruneFences(idleBefore: Date): Promise<number>;
}
