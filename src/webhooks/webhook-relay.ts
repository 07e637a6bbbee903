/**
 * The webhook relay of one instance: in the background, apart from the sell path (which only inserts
 * outbox rows in its own transactions), it
 *   1. moves committed outbox messages to deliveries (Store.webhooks.dispatchOutbox),
 *   2. claims due deliveries with a lease in the database, at most `concurrency` in flight,
 *   3. sends each one signed (WebhookSender) and records the result: delivered, retried later with
 *      exponential backoff and full jitter (retry-backoff.ts), or failed once the retry window is over;
 *   4. now and then, forgets finished deliveries older than the retention (pending ones never).
 * Every instance runs one; the leases spread the deliveries over them, and no two instances send the
 * same attempt at once, because a lease outlasts the attempt's deadline. Delivery is at least once: an
 * instance that dies after sending and before recording leaves the lease to run out, and the delivery is
 * sent again. Receivers drop duplicates by `webhook-id`.
 */
import type { WebhookStore, ClaimedDelivery } from "../store/webhook-store.js";
import type { RetryPolicy } from "./retry-backoff.js";
import { retryDelayMs } from "./retry-backoff.js";
import type { WebhookSender } from "./webhook-sender.js";

/** Outbox messages moved per dispatch call; a full one is followed by another at once (a few at most). */
const DISPATCH_BATCH = 500;
const DISPATCH_ROUNDS = 4;
/** A lease outlasts the attempt's deadline by this much (time to claim, start and record). */
const LEASE_MARGIN_MS = 10_000;
/** Old deliveries are pruned at most this often per instance, this many per statement, a few rounds. */
const PRUNE_EVERY_MS = 60_000;
const PRUNE_BATCH = 1000;
const PRUNE_ROUNDS = 10;

/** What the relay reports, for /metrics. */
export interface RelayObserver {
  /** An attempt ended: delivered, to be retried, or failed for good. */
  attempted?(result: "delivered" | "retry" | "failed"): void;
  /** Something the relay could not do (the store unavailable); it goes on at the next tick. */
  failed?(error: unknown, what: string): void;
}

export interface WebhookRelayOptions {
  store: WebhookStore;
  sender: WebhookSender;
  /** Names this instance's leases. */
  owner: string;
  /** Mean time between ticks; each wait is drawn from 0.5× to 1.5× of it. */
  intervalMs: number;
  /** Attempts in flight at most. */
  concurrency: number;
  retry: RetryPolicy;
  /** Delivered and failed deliveries are kept this long (for the admin's list and replay), then forgotten. */
  retentionMs: number;
  observer?: RelayObserver;
  random?: () => number;
  now?: () => Date;
}

export class WebhookRelay {
  readonly #options: WebhookRelayOptions;
  readonly #stop = new AbortController();
  readonly #inFlight = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | null = null;
  #ticking: Promise<void> | null = null;
  /** The last claim took every free slot: more may be due, so a finished attempt ticks again at once. */
  #moreDue = false;
  #closed = false;
  /** When this relay last pruned (performance.now()); the first prune comes with the first tick. */
  #prunedAtMs = -Infinity;

  constructor(options: WebhookRelayOptions) {
    this.#options = options;
  }

  get leaseMs(): number {
    return this.#options.sender.attemptDeadlineMs + LEASE_MARGIN_MS;
  }

  /** Starts the background loop; the first tick is soon after. */
  init(): void {
    if (this.#closed || this.#timer) return;
    this.#schedule(this.#options.intervalMs * Math.random());
  }

  /**
   * One tick: dispatch, then claim and start as many attempts as there are free slots. Resolves when
   * the attempts have started (not finished); used by the loop and by tests.
   */
  async tick(): Promise<void> {
    if (this.#ticking) return this.#ticking;
    this.#ticking = this.#tick().finally(() => {
      this.#ticking = null;
    });
    return this.#ticking;
  }

  /** Waits for the attempts in flight (tests). */
  async settled(): Promise<void> {
    while (this.#inFlight.size > 0) await Promise.all([...this.#inFlight]);
  }

  /** Stops the loop, aborts the attempts in flight and waits for them to record. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    this.#stop.abort();
    await this.#ticking?.catch(() => undefined);
    await this.settled();
  }

  async #tick(): Promise<void> {
    const { store, observer } = this.#options;
    const now = this.#now();
    try {
      for (let round = 0; round < DISPATCH_ROUNDS; round++) {
        if ((await store.dispatchOutbox(now, DISPATCH_BATCH)) < DISPATCH_BATCH) break;
      }
    } catch (error) {
      observer?.failed?.(error, "dispatch the outbox");
    }
    await this.#pruneNowAndThen(now);
    const free = this.#options.concurrency - this.#inFlight.size;
    if (free <= 0 || this.#closed) return;
    let claimed: ClaimedDelivery[] = [];
    try {
      claimed = await store.claimDeliveries(this.#options.owner, this.#now(), this.leaseMs, free);
    } catch (error) {
      observer?.failed?.(error, "claim deliveries");
    }
    this.#moreDue = claimed.length === free;
    for (const delivery of claimed) {
      const attempt = this.#attempt(delivery).finally(() => {
        this.#inFlight.delete(attempt);
        if (this.#moreDue && !this.#closed) {
          this.#moreDue = false;
          void this.tick();
        }
      });
      this.#inFlight.add(attempt);
    }
  }

  async #pruneNowAndThen(now: Date): Promise<void> {
    if (performance.now() - this.#prunedAtMs < PRUNE_EVERY_MS) return;
    this.#prunedAtMs = performance.now();
    const olderThan = new Date(now.getTime() - this.#options.retentionMs);
    try {
      for (let round = 0; round < PRUNE_ROUNDS && !this.#closed; round++) {
        if ((await this.#options.store.pruneDeliveries(olderThan, PRUNE_BATCH)) < PRUNE_BATCH) break;
      }
    } catch (error) {
      this.#options.observer?.failed?.(error, "prune old deliveries");
    }
  }

  async #attempt(delivery: ClaimedDelivery): Promise<void> {
    const { store, sender, retry, observer } = this.#options;
    const startedMs = Date.now();
    const sent = await sender.send(
      delivery.url,
      delivery.secret,
      delivery.messageId,
      delivery.payload,
      this.#stop.signal,
    );
    const ageMs = delivery.ageMs + (Date.now() - startedMs);
    const status = sent.delivered ? "delivered" : ageMs >= retry.windowMs ? "failed" : "retry";
    const retryInMs = status === "retry" ? retryDelayMs(retry, delivery.attempt, this.#options.random) : 0;
    try {
      await store.recordAttempt(
        this.#options.owner,
        {
          deliveryId: delivery.id,
          attempt: delivery.attempt,
          status,
          retryInMs,
          statusCode: sent.statusCode,
          error: sent.error,
        },
        this.#now(),
      );
      observer?.attempted?.(status);
    } catch (error) {
      // Not recorded: the lease runs out and another attempt sends it again (at least once).
      observer?.failed?.(error, "record a delivery attempt");
    }
  }

  #schedule(delayMs: number): void {
    if (this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.tick().finally(() => this.#schedule(this.#options.intervalMs * (0.5 + Math.random())));
    }, delayMs);
    // The relay alone must not keep the process alive.
    this.#timer.unref();
  }

  #now(): Date {
    return this.#options.now?.() ?? new Date();
  }
}
