/**
 * Webhook endpoints and deliveries on SQLite (webhooks.db in the per-event layout, boxoffice.db in the
 * single one): the admin reads and writes, the fan-out of outbox messages to deliveries, and the leases.
 *
 * A claim is one guarded UPDATE inside an IMMEDIATE transaction: SQLite's file lock makes the
 * transactions of all processes on the file take turns, and the WHERE clause (pending, due, no live
 * lease) is what keeps two instances from leasing the same delivery at once. A result is written only
 * by the lease's owner for the attempt it claimed.
 */
import type {
  NewWebhookEndpoint,
  OutboxMessage,
  WebhookDelivery,
  WebhookEndpoint,
} from "../../domain/webhook.js";
import { newDeliveryId, subscribes, webhookIdFloorsAt } from "../../domain/webhook.js";
import type { SqliteDatabase } from "../../sqlite/open-wal.js";
import type {
  AttemptResult,
  ClaimedDelivery,
  DeliveryPage,
  DeliveryQuery,
  EndpointPage,
  WebhookStore,
} from "../webhook-store.js";
import { toDelivery, toEndpoint, type DeliveryRow, type EndpointRow } from "../webhook-rows.js";
import { immediate } from "../../sqlite/immediate.js";

const DELIVERY_SELECT = `
  SELECT d.id, d.message_id, d.endpoint_id, m.event_id, m.type, d.status, d.attempts,
         d.next_attempt_ms AS next_attempt, d.last_status, d.last_error, d.created_at_ms AS created,
         d.delivered_at_ms AS delivered
  FROM webhook_deliveries d JOIN webhook_messages m ON m.id = d.message_id`;

function prepare(db: SqliteDatabase) {
  const p = <R = unknown>(sql: string) => db.prepare<unknown[], R>(sql);
  return {
    insertEndpoint: p(
      `INSERT INTO webhook_endpoints (id, url, event_types, enabled, secret, created_at)
       VALUES (@id, @url, @eventTypes, @enabled, @secret, @createdAt)`,
    ),
    endpoint: p<EndpointRow>("SELECT * FROM webhook_endpoints WHERE id = ?"),
    endpoints: p<EndpointRow>(
      "SELECT * FROM webhook_endpoints WHERE id > ? ORDER BY id LIMIT CAST(? AS INTEGER)",
    ),
    enabledEndpoints: p<EndpointRow>("SELECT * FROM webhook_endpoints WHERE enabled = 1"),
    deleteEndpoint: p("DELETE FROM webhook_endpoints WHERE id = ?"),
    deleteEndpointDeliveries: p("DELETE FROM webhook_deliveries WHERE endpoint_id = ?"),
    insertMessage: p(
      `INSERT OR IGNORE INTO webhook_messages (id, event_id, type, payload, created_at_ms)
       VALUES (@id, @eventId, @type, @payload, @createdAtMs)`,
    ),
    // UNIQUE (message_id, endpoint_id): a message copied twice makes one delivery.
    insertDelivery: p(
      `INSERT OR IGNORE INTO webhook_deliveries
         (id, message_id, endpoint_id, status, next_attempt_ms, retry_from_ms, created_at_ms)
       VALUES (@id, @messageId, @endpointId, 'pending', @nowMs, @nowMs, @nowMs)`,
    ),
    delivery: p<DeliveryRow>(`${DELIVERY_SELECT} WHERE d.id = ?`),
    // Newest first; the filters are optional (NULL matches everything).
    deliveries: p<DeliveryRow>(
      `${DELIVERY_SELECT}
       WHERE d.id < @cursor AND (@endpointId IS NULL OR d.endpoint_id = @endpointId)
         AND (@status IS NULL OR d.status = @status)
       ORDER BY d.id DESC LIMIT CAST(@limit AS INTEGER)`,
    ),
    // A delivered or failed delivery is sent again with a new retry window; a pending one, sooner. The
    // lease is left alone: an attempt in flight keeps it, so a replay never makes two sends at once.
    replay: p(
      `UPDATE webhook_deliveries SET
         retry_from_ms = CASE WHEN status = 'pending' THEN retry_from_ms ELSE @nowMs END,
         status = 'pending', next_attempt_ms = @nowMs, delivered_at_ms = NULL
       WHERE id = @id`,
    ),
    // The guarded claim: only pending, due rows with no live lease, of enabled endpoints.
    claim: p<{
      id: string;
      attempts: number;
      message_id: string;
      endpoint_id: string;
      retry_from_ms: number;
    }>(
      `UPDATE webhook_deliveries
       SET lease_owner = @owner, lease_until_ms = @untilMs, attempts = attempts + 1
       WHERE id IN (
         SELECT d.id FROM webhook_deliveries d JOIN webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled = 1
         WHERE d.status = 'pending' AND d.next_attempt_ms <= @nowMs
           AND (d.lease_until_ms IS NULL OR d.lease_until_ms <= @nowMs)
         ORDER BY d.next_attempt_ms LIMIT CAST(@limit AS INTEGER))
         AND status = 'pending' AND (lease_until_ms IS NULL OR lease_until_ms <= @nowMs)
       RETURNING id, attempts, message_id, endpoint_id, retry_from_ms`,
    ),
    claimed: p<{ payload: string; url: string; secret: string }>(
      `SELECT m.payload, e.url, e.secret FROM webhook_messages m, webhook_endpoints e
       WHERE m.id = ? AND e.id = ?`,
    ),
    // Only the lease's owner, for the attempt it claimed, writes the result.
    record: p(
      `UPDATE webhook_deliveries SET
         status = @status, next_attempt_ms = @nextMs, lease_owner = NULL, lease_until_ms = NULL,
         last_status = @statusCode, last_error = @error, delivered_at_ms = @deliveredAtMs
       WHERE id = @id AND lease_owner = @owner AND attempts = @attempt AND status = 'pending'`,
    ),
    pending: p<{ pending: number }>(
      "SELECT count(*) AS pending FROM webhook_deliveries WHERE status = 'pending'",
    ),
    // Ids sort by creation time: a key range below the floor finds the old rows by the primary key.
    pruneDeliveries: p(
      `DELETE FROM webhook_deliveries WHERE id IN (
         SELECT id FROM webhook_deliveries
         WHERE id < @deliveryFloor AND status IN ('delivered', 'failed') ORDER BY id LIMIT CAST(@limit AS INTEGER))`,
    ),
    pruneMessages: p(
      `DELETE FROM webhook_messages WHERE id IN (
         SELECT m.id FROM webhook_messages m
         WHERE m.id < @messageFloor
           AND NOT EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.message_id = m.id)
         ORDER BY m.id LIMIT CAST(@limit AS INTEGER))`,
    ),
  };
}

type Statements = ReturnType<typeof prepare>;

/**
 * The webhook store on one SQLite database. `db` is read on each call (it is opened by the store's
 * init()); `dispatch` is the store's own outbox dispatch, which knows the layout.
 */
export class SqliteWebhooks implements WebhookStore {
  readonly #db: () => SqliteDatabase;
  readonly #dispatch: (now: Date, limit: number) => number;
  #statements: { db: SqliteDatabase; s: Statements } | null = null;

  constructor(db: () => SqliteDatabase, dispatch: (now: Date, limit: number) => number) {
    this.#db = db;
    this.#dispatch = dispatch;
  }

  #s(): Statements {
    const db = this.#db();
    if (this.#statements?.db !== db) this.#statements = { db, s: prepare(db) };
    return this.#statements.s;
  }

  async createEndpoint(endpoint: NewWebhookEndpoint): Promise<WebhookEndpoint> {
    this.#s().insertEndpoint.run({
      id: endpoint.id,
      url: endpoint.url,
      eventTypes: JSON.stringify(endpoint.eventTypes),
      enabled: endpoint.enabled ? 1 : 0,
      secret: endpoint.secret,
      createdAt: endpoint.createdAt,
    });
    return {
      id: endpoint.id,
      url: endpoint.url,
      eventTypes: endpoint.eventTypes,
      enabled: endpoint.enabled,
      createdAt: endpoint.createdAt,
    };
  }

  async listEndpoints(page: { limit: number; cursor: string | null }): Promise<EndpointPage> {
    const rows = this.#s().endpoints.all(page.cursor ?? "", page.limit + 1) as EndpointRow[];
    const endpoints = rows.slice(0, page.limit).map(toEndpoint);
    return { endpoints, nextCursor: rows.length > page.limit ? (endpoints.at(-1)?.id ?? null) : null };
  }

  async getEndpoint(endpointId: string): Promise<WebhookEndpoint | null> {
    const row = this.#s().endpoint.get(endpointId) as EndpointRow | undefined;
    return row ? toEndpoint(row) : null;
  }

  async deleteEndpoint(endpointId: string): Promise<boolean> {
    const s = this.#s();
    return immediate(this.#db(), () => {
      s.deleteEndpointDeliveries.run(endpointId);
      return s.deleteEndpoint.run(endpointId).changes === 1;
    });
  }

  async listDeliveries(query: DeliveryQuery): Promise<DeliveryPage> {
    const rows = this.#s().deliveries.all({
      cursor: query.cursor ?? "dlv_~",
      endpointId: query.endpointId,
      status: query.status,
      limit: query.limit + 1,
    }) as DeliveryRow[];
    const deliveries = rows.slice(0, query.limit).map(toDelivery);
    return { deliveries, nextCursor: rows.length > query.limit ? (deliveries.at(-1)?.id ?? null) : null };
  }

  async getDelivery(deliveryId: string): Promise<WebhookDelivery | null> {
    const row = this.#s().delivery.get(deliveryId) as DeliveryRow | undefined;
    return row ? toDelivery(row) : null;
  }

  async replayDelivery(deliveryId: string, now: Date): Promise<WebhookDelivery | null> {
    const s = this.#s();
    if (s.replay.run({ id: deliveryId, nowMs: now.getTime() }).changes === 0) return null;
    return this.getDelivery(deliveryId);
  }

  async dispatchOutbox(now: Date, limit: number): Promise<number> {
    return this.#dispatch(now, limit);
  }

  /**
   * Stores messages and one delivery per enabled endpoint that subscribes to each (a message that has
   * none is dropped), in one transaction
   * (a savepoint when the caller's transaction is open: the single layout moves and deletes in one).
   */
  fanOut(messages: readonly OutboxMessage[], now: Date): void {
    if (messages.length === 0) return;
    const s = this.#s();
    immediate(this.#db(), () => {
      const endpoints = (s.enabledEndpoints.all() as EndpointRow[]).map(toEndpoint);
      for (const message of messages) {
        // A message no endpoint subscribes to is not kept: without endpoints, nothing piles up here.
        const to = endpoints.filter((endpoint) => subscribes(endpoint.eventTypes, message.type));
        if (to.length > 0) s.insertMessage.run({ ...message });
        for (const endpoint of to) {
          s.insertDelivery.run({
            id: newDeliveryId(now.getTime()),
            messageId: message.id,
            endpointId: endpoint.id,
            nowMs: now.getTime(),
          });
        }
      }
    });
  }

  async claimDeliveries(
    owner: string,
    now: Date,
    leaseMs: number,
    limit: number,
  ): Promise<ClaimedDelivery[]> {
    const s = this.#s();
    const nowMs = now.getTime();
    return immediate(this.#db(), () => {
      const rows = s.claim.all({ owner, untilMs: nowMs + leaseMs, nowMs, limit }) as {
        id: string;
        attempts: number;
        message_id: string;
        endpoint_id: string;
        retry_from_ms: number;
      }[];
      const claimed: ClaimedDelivery[] = [];
      for (const row of rows) {
        const detail = s.claimed.get(row.message_id, row.endpoint_id) as
          { payload: string; url: string; secret: string } | undefined;
        if (!detail) continue;
        claimed.push({
          id: row.id,
          attempt: row.attempts,
          messageId: row.message_id,
          endpointId: row.endpoint_id,
          url: detail.url,
          secret: detail.secret,
          payload: detail.payload,
          ageMs: nowMs - row.retry_from_ms,
        });
      }
      return claimed;
    });
  }

  async recordAttempt(owner: string, result: AttemptResult, now: Date): Promise<boolean> {
    const nowMs = now.getTime();
    return (
      this.#s().record.run({
        id: result.deliveryId,
        owner,
        attempt: result.attempt,
        status: result.status === "retry" ? "pending" : result.status,
        nextMs: nowMs + (result.status === "retry" ? result.retryInMs : 0),
        statusCode: result.statusCode,
        error: result.error,
        deliveredAtMs: result.status === "delivered" ? nowMs : null,
      }).changes === 1
    );
  }

  async pendingDeliveries(): Promise<number> {
    return (this.#s().pending.get() as { pending: number }).pending;
  }

  async pruneDeliveries(olderThan: Date, limit: number): Promise<number> {
    const s = this.#s();
    const floors = webhookIdFloorsAt(olderThan.getTime());
    return immediate(this.#db(), () => {
      const removed = s.pruneDeliveries.run({ deliveryFloor: floors.delivery, limit }).changes;
      s.pruneMessages.run({ messageFloor: floors.message, limit });
      return removed;
    });
  }
}
