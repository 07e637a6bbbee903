/**
 * Webhooks in domain words: the message types the outbox carries, the one JSON shape every message has
 * (docs/api.md, "Webhooks"), which change of the sell path writes which message, and the records of the
 * endpoints that subscribe to them and of each delivery. No I/O: the stores write these records in the
 * same transaction as the change they report, the relay (src/webhooks/) sends them.
 */
import type { Change } from "./decide.js";
import { ulid } from "./ids.js";

/** Every message type, in the order docs/api.md lists them. */
export const WEBHOOK_EVENT_TYPES = [
  "order.created",
  "order.cancelled",
  "hold.created",
  "hold.expired",
  "event.sold_out",
  "event.state_changed",
] as const;

export type WebhookEventType = (typeof WEBHOOK_EVENT_TYPES)[number];

export function isWebhookEventType(value: unknown): value is WebhookEventType {
  return typeof value === "string" && (WEBHOOK_EVENT_TYPES as readonly string[]).includes(value);
}

/**
 * The body of every webhook request, exactly as it is signed and sent: `id` is the message id (also the
 * `webhook-id` header, the same on every retry, so a receiver can drop duplicates), `type` one of
 * WEBHOOK_EVENT_TYPES, `timestamp` when the change was committed (RFC 3339 UTC), `data` what changed.
 */
export interface WebhookMessage {
  id: string;
  type: WebhookEventType;
  timestamp: string;
  data: Record<string, unknown>;
}

/** A message as an outbox row keeps it: the event it belongs to and its body, serialized once. */
export interface OutboxMessage {
  id: string;
  eventId: string;
  type: WebhookEventType;
  /** JSON of the WebhookMessage: these bytes are what is signed and sent, on every attempt. */
  payload: string;
  createdAtMs: number;
}

/**
 * The smallest message and delivery ids made at `atMs` (the ULID's time part, then the lowest random
 * part): every id made before then sorts below them, so a key range on the primary key finds old rows.
 */
export function webhookIdFloorsAt(atMs: number): { message: string; delivery: string } {
  const time = ulid(atMs).slice(0, 10);
  const floor = `${time}${"0".repeat(16)}`;
  return { message: `msg_${floor}`, delivery: `dlv_${floor}` };
}

/** A new message id: `msg_<ulid>`, sortable by creation time. */
export function newMessageId(nowMs?: number): string {
  return `msg_${ulid(nowMs)}`;
}

/** A message of `type` about `eventId`, made at `now`, ready for an outbox. */
export function outboxMessage(
  eventId: string,
  type: WebhookEventType,
  data: Record<string, unknown>,
  now: Date,
): OutboxMessage {
  const message: WebhookMessage = {
    id: newMessageId(now.getTime()),
    type,
    timestamp: now.toISOString(),
    data,
  };
  return { id: message.id, eventId, type, payload: JSON.stringify(message), createdAtMs: now.getTime() };
}

/**
 * The messages a change of the sell path writes: a sale or a confirmed hold is `order.created` (a
 * confirmed hold says which hold it was), a cancel `order.cancelled`, a new hold `hold.created`, a hold
 * that ran out `hold.expired`. A released or extended hold writes none.
 */
export function messagesOfChange(eventId: string, change: Change, now: Date): OutboxMessage[] {
  switch (change.type) {
    case "sell":
      return [outboxMessage(eventId, "order.created", { order: change.order, holdId: null }, now)];
    case "confirm":
      return [outboxMessage(eventId, "order.created", { order: change.order, holdId: change.hold.id }, now)];
    case "cancel":
      return [outboxMessage(eventId, "order.cancelled", { order: change.order }, now)];
    case "hold":
      return [outboxMessage(eventId, "hold.created", { hold: change.hold }, now)];
    case "end-hold":
      return change.hold.status === "expired"
        ? [outboxMessage(eventId, "hold.expired", { hold: change.hold }, now)]
        : [];
    case "extend-hold":
      return [];
  }
}

/** `event.sold_out`: a batch that took tickets left none available. */
export function soldOutMessage(
  eventId: string,
  counters: { capacity: number; sold: number; held: number },
  now: Date,
): OutboxMessage {
  return outboxMessage(
    eventId,
    "event.sold_out",
    { eventId, capacity: counters.capacity, sold: counters.sold, held: counters.held },
    now,
  );
}

/**
 * `event.state_changed`: the sale's state moved (published, paused, resumed, closed). The store that
 * makes the change writes it in the same transaction, through its outbox hook (see docs/architecture.md,
 * "Webhooks: the outbox").
 */
export function stateChangedMessage(
  eventId: string,
  change: { from: string; to: string },
  now: Date,
): OutboxMessage {
  return outboxMessage(eventId, "event.state_changed", { eventId, from: change.from, to: change.to }, now);
}

/** Whether an endpoint with this filter gets messages of `type` (an empty filter gets every type). */
export function subscribes(eventTypes: readonly WebhookEventType[], type: WebhookEventType): boolean {
  return eventTypes.length === 0 || eventTypes.includes(type);
}

/** A subscribed endpoint as the admin API shows it; its secret is shown once, at creation. */
export interface WebhookEndpoint {
  id: string;
  url: string;
  /** The types it gets; empty means every type. */
  eventTypes: WebhookEventType[];
  enabled: boolean;
  createdAt: string;
}

/** What a store keeps of a new endpoint: its signing secret too (`whsec_<base64>`). */
export interface NewWebhookEndpoint extends WebhookEndpoint {
  secret: string;
}

export type DeliveryStatus = "pending" | "delivered" | "failed";
export const DELIVERY_STATUSES: readonly DeliveryStatus[] = ["pending", "delivered", "failed"];

/** One message to one endpoint, with where its attempts stand. */
export interface WebhookDelivery {
  id: string;
  messageId: string;
  endpointId: string;
  eventId: string;
  type: WebhookEventType;
  status: DeliveryStatus;
  /** Attempts started so far (a claim counts one). */
  attempts: number;
  /** The HTTP status of the last answer, or null when there was none (refused, timed out). */
  lastStatusCode: number | null;
  lastError: string | null;
  /** When a pending delivery is tried next; null once delivered or failed. */
  nextAttemptAt: string | null;
  createdAt: string;
  deliveredAt: string | null;
}

export function newEndpointId(nowMs?: number): string {
  return `whe_${ulid(nowMs)}`;
}

export function newDeliveryId(nowMs?: number): string {
  return `dlv_${ulid(nowMs)}`;
}

export const ENDPOINT_ID_PATTERN = "^whe_[0-9A-HJKMNP-TV-Z]{26}$";
export const DELIVERY_ID_PATTERN = "^dlv_[0-9A-HJKMNP-TV-Z]{26}$";
