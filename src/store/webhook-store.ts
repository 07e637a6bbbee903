/**
 * The webhook side of a store: subscribed endpoints, the deliveries of outbox messages to them, and the
 * two steps the relay (src/webhooks/) takes: `dispatchOutbox` moves committed outbox rows to deliveries,
 * one per subscribed endpoint; `claimDeliveries` leases due deliveries to one instance, so that no two
 * instances send the same attempt at the same time, and `recordAttempt` writes what came of it.
 *
 * The outbox rows themselves are written by `Store.execute` and `Store.expireHolds`, in the same
 * transaction as the change they report (docs/architecture.md, "Webhooks: the outbox").
 */
import type {
  DeliveryStatus,
  NewWebhookEndpoint,
  WebhookDelivery,
  WebhookEndpoint,
} from "../domain/webhook.js";

/** A delivery leased to one relay for one attempt, with what the attempt needs. */
export interface ClaimedDelivery {
  id: string;
  /** The number of this attempt (1 for the first); recordAttempt names it. */
  attempt: number;
  messageId: string;
  endpointId: string;
  url: string;
  /** The endpoint's signing secret, `whsec_<base64>`. */
  secret: string;
  /** The exact body to sign and send. */
  payload: string;
  /** How long ago (by the database's clock) the delivery began to be tried: retries stop past the window. */
  ageMs: number;
}

/** What came of one attempt. */
export interface AttemptResult {
  deliveryId: string;
  attempt: number;
  /** `retry` keeps it pending until `retryInMs` from now; `failed` gives up; `delivered` is final. */
  status: "delivered" | "retry" | "failed";
  retryInMs: number;
  statusCode: number | null;
  error: string | null;
}

export interface EndpointPage {
  endpoints: WebhookEndpoint[];
  nextCursor: string | null;
}

export interface DeliveryPage {
  deliveries: WebhookDelivery[];
  nextCursor: string | null;
}

export interface DeliveryQuery {
  endpointId: string | null;
  status: DeliveryStatus | null;
  limit: number;
  /** The previous page's nextCursor: pages go newest first. */
  cursor: string | null;
}

export interface WebhookStore {
  /** Stores a new endpoint with its secret; from then on, messages dispatched go to it too. */
  createEndpoint(endpoint: NewWebhookEndpoint): Promise<WebhookEndpoint>;
  /** Endpoints oldest first, `limit` at a time. */
  listEndpoints(page: { limit: number; cursor: string | null }): Promise<EndpointPage>;
  getEndpoint(endpointId: string): Promise<WebhookEndpoint | null>;
  /** Removes an endpoint and its deliveries; false when there was none. */
  deleteEndpoint(endpointId: string): Promise<boolean>;

  /** Deliveries newest first, filtered by endpoint and status. */
  listDeliveries(query: DeliveryQuery): Promise<DeliveryPage>;
  getDelivery(deliveryId: string): Promise<WebhookDelivery | null>;
  /**
   * Makes a delivery due now and pending again (a delivered or failed one is sent again, with a new
   * retry window; a pending one is tried sooner). Null when there is no such delivery.
   */
  replayDelivery(deliveryId: string, now: Date): Promise<WebhookDelivery | null>;

  /**
   * Moves up to about `limit` committed outbox messages to deliveries, one per enabled endpoint that
   * subscribes to the message's type, and removes them from the outbox. Safe to run on every instance at
   * once: a message copied twice makes no second delivery. Returns how many messages it moved.
   */
  dispatchOutbox(now: Date, limit: number): Promise<number>;
  /**
   * Leases up to `limit` due pending deliveries to `owner` for `leaseMs`: each claim starts one attempt
   * (counted), and no other claim can take the delivery until its lease runs out or the attempt is
   * recorded. The lease must outlast the attempt (the relay's timeouts), so that no two instances ever
   * send the same delivery at the same time.
   */
  claimDeliveries(owner: string, now: Date, leaseMs: number, limit: number): Promise<ClaimedDelivery[]>;
  /**
   * Writes an attempt's result, only if `owner` still holds that attempt's lease (else nothing: another
   * instance has taken the delivery over). True if written.
   */
  recordAttempt(owner: string, result: AttemptResult, now: Date): Promise<boolean>;
  /** How many deliveries are pending now (for /metrics). */
  pendingDeliveries(): Promise<number>;
  /**
   * Forgets up to `limit` finished (delivered or failed) deliveries made before `olderThan`, and the
   * messages made before it that no delivery needs any more. A pending delivery is never removed,
   * whatever its age. Returns how many deliveries it removed.
   */
  pruneDeliveries(olderThan: Date, limit: number): Promise<number>;
}
