/**
 * Webhook endpoints and deliveries on PostgreSQL. The dispatch moves outbox rows in one transaction
 * (claimed FOR UPDATE SKIP LOCKED, so relays on many instances take different rows, then copied and
 * deleted); a claim leases due deliveries FOR UPDATE SKIP LOCKED, by the database's clock, so instances
 * whose clocks differ still agree on when a lease runs out.
 */
import type {
  NewWebhookEndpoint,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEventType,
} from "../../domain/webhook.js";
import { newDeliveryId, subscribes, webhookIdFloorsAt } from "../../domain/webhook.js";
import type {
  AttemptResult,
  ClaimedDelivery,
  DeliveryPage,
  DeliveryQuery,
  EndpointPage,
  WebhookStore,
} from "../webhook-store.js";
import { toDelivery, toEndpoint, type DeliveryRow, type EndpointRow } from "../webhook-rows.js";
import type { PostgresPool } from "./postgres-pool.js";

/** The statements, for one schema (`s` quoted as an identifier). */
function buildStatements(s: string) {
  const deliverySelect = `
    SELECT d.id, d.message_id, d.endpoint_id, m.event_id, m.type, d.status, d.attempts,
           d.next_attempt_at AS next_attempt, d.last_status, d.last_error, d.created_at AS created,
           d.delivered_at AS delivered
    FROM ${s}.webhook_deliveries d JOIN ${s}.webhook_messages m ON m.id = d.message_id`;
  return {
    insertEndpoint: `
      INSERT INTO ${s}.webhook_endpoints (id, url, event_types, enabled, secret, created_at)
      VALUES ($1, $2, $3, $4, $5, $6)`,
    endpoint: `SELECT id, url, event_types, enabled, created_at FROM ${s}.webhook_endpoints WHERE id = $1`,
    endpoints: `
      SELECT id, url, event_types, enabled, created_at FROM ${s}.webhook_endpoints
      WHERE id > $1 ORDER BY id LIMIT $2`,
    enabledEndpoints: `SELECT id, url, event_types, enabled, created_at FROM ${s}.webhook_endpoints WHERE enabled`,
    // Its deliveries go with it (ON DELETE CASCADE).
    deleteEndpoint: `DELETE FROM ${s}.webhook_endpoints WHERE id = $1 RETURNING id`,
    delivery: `${deliverySelect} WHERE d.id = $1`,
    deliveries: `
      ${deliverySelect}
      WHERE d.id < $1 AND ($2::text IS NULL OR d.endpoint_id = $2) AND ($3::text IS NULL OR d.status = $3)
      ORDER BY d.id DESC LIMIT $4`,
    // A delivered or failed delivery is sent again with a new retry window; a pending one, sooner. The
    // lease is left alone: an attempt in flight keeps it, so a replay never makes two sends at once.
    replay: `
      UPDATE ${s}.webhook_deliveries SET
        retry_from = CASE WHEN status = 'pending' THEN retry_from ELSE now() END,
        status = 'pending', next_attempt_at = now(), delivered_at = NULL
      WHERE id = $1 RETURNING id`,
    // Outbox rows no other relay is moving: taken out of the outbox; the caller stores them in the same
    // transaction, so they are moved exactly once or stay.
    takeOutbox: `
      DELETE FROM ${s}.outbox WHERE seq IN (
        SELECT seq FROM ${s}.outbox ORDER BY seq LIMIT $1 FOR UPDATE SKIP LOCKED)
      RETURNING seq, id, event_id, type, payload, created_at`,
    insertMessages: `
      INSERT INTO ${s}.webhook_messages (id, event_id, type, payload, created_at)
      SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::timestamptz[])
      ON CONFLICT (id) DO NOTHING`,
    insertDeliveries: `
      INSERT INTO ${s}.webhook_deliveries
        (id, message_id, endpoint_id, status, next_attempt_at, retry_from, created_at)
      SELECT id, message_id, endpoint_id, 'pending', now(), now(), now()
      FROM unnest($1::text[], $2::text[], $3::text[]) AS d (id, message_id, endpoint_id)
      ON CONFLICT (message_id, endpoint_id) DO NOTHING`,
    // Due pending deliveries of enabled endpoints with no live lease, that no other claim is taking.
    claim: `
      WITH due AS (
        SELECT d.id FROM ${s}.webhook_deliveries d
        JOIN ${s}.webhook_endpoints e ON e.id = d.endpoint_id AND e.enabled
        WHERE d.status = 'pending' AND d.next_attempt_at <= now()
          AND (d.lease_until IS NULL OR d.lease_until <= now())
        ORDER BY d.next_attempt_at LIMIT $2
        FOR UPDATE OF d SKIP LOCKED
      )
      UPDATE ${s}.webhook_deliveries d
      SET lease_owner = $1, lease_until = now() + $3 * interval '1 millisecond', attempts = d.attempts + 1
      FROM due, ${s}.webhook_messages m, ${s}.webhook_endpoints e
      WHERE d.id = due.id AND m.id = d.message_id AND e.id = d.endpoint_id
      RETURNING d.id, d.attempts, d.message_id, d.endpoint_id, e.url, e.secret, m.payload,
                (extract(epoch FROM now() - d.retry_from) * 1000)::bigint AS age_ms`,
    // Only the lease's owner, for the attempt it claimed, writes the result.
    record: `
      UPDATE ${s}.webhook_deliveries SET
        status = $4, next_attempt_at = now() + $5 * interval '1 millisecond',
        lease_owner = NULL, lease_until = NULL, last_status = $6, last_error = $7,
        delivered_at = CASE WHEN $4 = 'delivered' THEN now() END
      WHERE id = $1 AND lease_owner = $2 AND attempts = $3 AND status = 'pending'
      RETURNING id`,
    pending: `SELECT count(*)::int AS pending FROM ${s}.webhook_deliveries WHERE status = 'pending'`,
    // Ids sort by creation time: a key range below the floor finds the old rows by the primary key.
    pruneDeliveries: `DELETE FROM ${s}.webhook_deliveries WHERE id IN (
        SELECT id FROM ${s}.webhook_deliveries
        WHERE id < $1 AND status IN ('delivered', 'failed') ORDER BY id LIMIT $2)`,
    pruneMessages: `DELETE FROM ${s}.webhook_messages WHERE id IN (
        SELECT m.id FROM ${s}.webhook_messages m
        WHERE m.id < $1
          AND NOT EXISTS (SELECT 1 FROM ${s}.webhook_deliveries d WHERE d.message_id = m.id)
        ORDER BY m.id LIMIT $2)`,
  } as const;
}

export class PostgresWebhooks implements WebhookStore {
  readonly #pool: PostgresPool;
  readonly #sql: ReturnType<typeof buildStatements>;

  constructor(pool: PostgresPool, quotedSchema: string) {
    this.#pool = pool;
    this.#sql = buildStatements(quotedSchema);
  }

  async createEndpoint(endpoint: NewWebhookEndpoint): Promise<WebhookEndpoint> {
    await this.#pool.transaction(null, (tx) =>
      tx.rows(this.#sql.insertEndpoint, [
        endpoint.id,
        endpoint.url,
        endpoint.eventTypes,
        endpoint.enabled,
        endpoint.secret,
        endpoint.createdAt,
      ]),
    );
    const { secret: _secret, ...shown } = endpoint;
    return shown;
  }

  async listEndpoints(page: { limit: number; cursor: string | null }): Promise<EndpointPage> {
    const [rows] = await this.#pool.read<[EndpointRow]>([
      { text: this.#sql.endpoints, values: [page.cursor ?? "", page.limit + 1] },
    ]);
    const endpoints = rows.slice(0, page.limit).map(toEndpoint);
    return { endpoints, nextCursor: rows.length > page.limit ? (endpoints.at(-1)?.id ?? null) : null };
  }

  async getEndpoint(endpointId: string): Promise<WebhookEndpoint | null> {
    const [[row]] = await this.#pool.read<[EndpointRow]>([
      { text: this.#sql.endpoint, values: [endpointId] },
    ]);
    return row ? toEndpoint(row) : null;
  }

  async deleteEndpoint(endpointId: string): Promise<boolean> {
    const rows = await this.#pool.transaction(null, (tx) => tx.rows(this.#sql.deleteEndpoint, [endpointId]));
    return rows.length === 1;
  }

  async listDeliveries(query: DeliveryQuery): Promise<DeliveryPage> {
    const [rows] = await this.#pool.read<[DeliveryRow]>([
      {
        text: this.#sql.deliveries,
        values: [query.cursor ?? "dlv_~", query.endpointId, query.status, query.limit + 1],
      },
    ]);
    const deliveries = rows.slice(0, query.limit).map(toDelivery);
    return { deliveries, nextCursor: rows.length > query.limit ? (deliveries.at(-1)?.id ?? null) : null };
  }

  async getDelivery(deliveryId: string): Promise<WebhookDelivery | null> {
    const [[row]] = await this.#pool.read<[DeliveryRow]>([
      { text: this.#sql.delivery, values: [deliveryId] },
    ]);
    return row ? toDelivery(row) : null;
  }

  async replayDelivery(deliveryId: string, _now: Date): Promise<WebhookDelivery | null> {
    const rows = await this.#pool.transaction(null, (tx) => tx.rows(this.#sql.replay, [deliveryId]));
    return rows.length === 1 ? this.getDelivery(deliveryId) : null;
  }

  async dispatchOutbox(now: Date, limit: number): Promise<number> {
    return this.#pool.transaction(null, async (tx) => {
      const taken = await tx.rows<{
        id: string;
        event_id: string;
        type: WebhookEventType;
        payload: string;
        created_at: Date;
      }>(this.#sql.takeOutbox, [limit]);
      if (taken.length === 0) return 0;
      const endpoints = (await tx.rows<EndpointRow>(this.#sql.enabledEndpoints)).map(toEndpoint);
      // A message no endpoint subscribes to is not kept: without endpoints, nothing piles up.
      const kept = taken.filter((m) => endpoints.some((e) => subscribes(e.eventTypes, m.type)));
      if (kept.length === 0) return taken.length;
      await tx.rows(this.#sql.insertMessages, [
        kept.map((m) => m.id),
        kept.map((m) => m.event_id),
        kept.map((m) => m.type),
        kept.map((m) => m.payload),
        kept.map((m) => m.created_at),
      ]);
      const deliveries: { id: string; messageId: string; endpointId: string }[] = [];
      for (const message of kept) {
        for (const endpoint of endpoints) {
          if (!subscribes(endpoint.eventTypes, message.type)) continue;
          deliveries.push({
            id: newDeliveryId(now.getTime()),
            messageId: message.id,
            endpointId: endpoint.id,
          });
        }
      }
      if (deliveries.length > 0) {
        await tx.rows(this.#sql.insertDeliveries, [
          deliveries.map((d) => d.id),
          deliveries.map((d) => d.messageId),
          deliveries.map((d) => d.endpointId),
        ]);
      }
      return taken.length;
    });
  }

  async claimDeliveries(
    owner: string,
    _now: Date,
    leaseMs: number,
    limit: number,
  ): Promise<ClaimedDelivery[]> {
    const rows = await this.#pool.transaction(null, (tx) =>
      tx.rows<{
        id: string;
        attempts: number;
        message_id: string;
        endpoint_id: string;
        url: string;
        secret: string;
        payload: string;
        age_ms: string;
      }>(this.#sql.claim, [owner, limit, leaseMs]),
    );
    return rows.map((row) => ({
      id: row.id,
      attempt: row.attempts,
      messageId: row.message_id,
      endpointId: row.endpoint_id,
      url: row.url,
      secret: row.secret,
      payload: row.payload,
      ageMs: Number(row.age_ms),
    }));
  }

  async recordAttempt(owner: string, result: AttemptResult, _now: Date): Promise<boolean> {
    const rows = await this.#pool.transaction(null, (tx) =>
      tx.rows(this.#sql.record, [
        result.deliveryId,
        owner,
        result.attempt,
        result.status === "retry" ? "pending" : result.status,
        result.status === "retry" ? result.retryInMs : 0,
        result.statusCode,
        result.error,
      ]),
    );
    return rows.length === 1;
  }

  async pendingDeliveries(): Promise<number> {
    const [[row]] = await this.#pool.read<[{ pending: number }]>([{ text: this.#sql.pending }]);
    return row?.pending ?? 0;
  }

  async pruneDeliveries(olderThan: Date, limit: number): Promise<number> {
    const floors = webhookIdFloorsAt(olderThan.getTime());
    return this.#pool.transaction(null, async (tx) => {
      const removed = await tx.rows(`${this.#sql.pruneDeliveries} RETURNING id`, [floors.delivery, limit]);
      await tx.rows(this.#sql.pruneMessages, [floors.message, limit]);
      return removed.length;
    });
  }
}
