/**
 * What the webhook backends share: an endpoint's and a delivery's row as both databases' statements
 * return them (the columns aliased to one set of names), and their mapping to the store's records. The
 * databases differ only in how they hand back a few types, which the mapping takes either way.
 */
import type {
  DeliveryStatus,
  WebhookDelivery,
  WebhookEndpoint,
  WebhookEventType,
} from "../domain/webhook.js";

/** An instant as a database returns it: a Date (PostgreSQL) or milliseconds since the epoch (SQLite). */
type Instant = Date | number;

export interface EndpointRow {
  id: string;
  url: string;
  /** A text[] (PostgreSQL) or a JSON array in text (SQLite). */
  event_types: WebhookEventType[] | string;
  enabled: boolean | number;
  /** An ISO 8601 text (SQLite) or a timestamptz. */
  created_at: Date | string;
}

export interface DeliveryRow {
  id: string;
  message_id: string;
  endpoint_id: string;
  event_id: string;
  type: WebhookEventType;
  status: DeliveryStatus;
  attempts: number;
  next_attempt: Instant;
  last_status: number | null;
  last_error: string | null;
  created: Instant;
  delivered: Instant | null;
}

const isoOf = (instant: Instant): string => new Date(instant).toISOString();

export function toEndpoint(row: EndpointRow): WebhookEndpoint {
  return {
    id: row.id,
    url: row.url,
    eventTypes:
      typeof row.event_types === "string"
        ? (JSON.parse(row.event_types) as WebhookEventType[])
        : row.event_types,
    enabled: row.enabled === true || row.enabled === 1,
    createdAt: typeof row.created_at === "string" ? row.created_at : row.created_at.toISOString(),
  };
}

export function toDelivery(row: DeliveryRow): WebhookDelivery {
  return {
    id: row.id,
    messageId: row.message_id,
    endpointId: row.endpoint_id,
    eventId: row.event_id,
    type: row.type,
    status: row.status,
    attempts: row.attempts,
    lastStatusCode: row.last_status,
    lastError: row.last_error,
    nextAttemptAt: row.status === "pending" ? isoOf(row.next_attempt) : null,
    createdAt: isoOf(row.created),
    deliveredAt: row.delivered === null ? null : isoOf(row.delivered),
  };
}
