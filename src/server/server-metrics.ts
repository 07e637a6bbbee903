/**
 * The Prometheus metrics of one instance, on a registry of its own (several apps in one test process
 * must not collide in prom-client's global registry).
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from "prom-client";
import type { SellPathObserver } from "../sales/sell-path.js";
import type { RoomFigures } from "../store/waiting-room-store.js";

export class ServerMetrics {
  readonly registry = new Registry();
  readonly httpRequests: Counter<"method" | "route" | "status">;
  readonly httpDuration: Histogram<"method" | "route">;
  readonly ticketsSold: Counter;
  readonly soldOut: Counter;
  readonly batchSize: Histogram;
  readonly lockWait: Histogram;
  readonly queueDepth: Gauge;
  readonly overloaded: Counter;
  readonly holdsExpired: Counter;
  readonly storeBookkeepingFailures: Counter;
  readonly webhookAttempts: Counter<"result">;
  readonly webhookPending: Gauge;
  /** Where the pending-deliveries gauge reads from; set when the relay starts. */
  #webhookBacklog: (() => Promise<number>) | null = null;
  readonly waitingRoomAdmitted: Counter<"event">;

  constructor(instanceId: string, options: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    this.registry.setDefaultLabels({ instance_id: instanceId });
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry });
    this.httpRequests = new Counter({
      name: "boxoffice_http_requests_total",
      help: "HTTP requests answered, by route pattern and status",
      labelNames: ["method", "route", "status"],
      registers,
    });
    this.httpDuration = new Histogram({
      name: "boxoffice_http_request_duration_seconds",
      help: "Time from request to response, by route pattern",
      labelNames: ["method", "route"],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.ticketsSold = new Counter({
      name: "boxoffice_tickets_sold_total",
      help: "Tickets sold by this instance (orders and confirmed holds; replays not counted)",
      registers,
    });
    this.soldOut = new Counter({
      name: "boxoffice_sold_out_total",
      help: "Requests answered 409 sold_out or seats_unavailable",
      registers,
    });
    this.batchSize = new Histogram({
      name: "boxoffice_sell_batch_size",
      help: "Commands per sell batch (one store call: one event's batch, or a tick of several events' batches)",
      buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
      registers,
    });
    this.lockWait = new Histogram({
      name: "boxoffice_lock_wait_seconds",
      help: "Time a sell batch waited for its lock",
      buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    });
    this.queueDepth = new Gauge({
      name: "boxoffice_sell_queue_depth",
      help: "Sell commands waiting for a batch",
      registers,
    });
    this.overloaded = new Counter({
      name: "boxoffice_sell_overloaded_total",
      help: "Sell requests refused with 503 because the queues were full",
      registers,
    });
    this.holdsExpired = new Counter({
      name: "boxoffice_holds_expired_total",
      help: "Holds this instance's sweeper expired",
      registers,
    });
    this.storeBookkeepingFailures = new Counter({
      name: "boxoffice_store_bookkeeping_failures_total",
      help: "Store bookkeeping writes that failed without failing a request (hold-deadline hints)",
      registers,
    });
    this.webhookAttempts = new Counter({
      name: "boxoffice_webhook_attempts_total",
      help: "Webhook delivery attempts this instance made, by result: delivered, retry (tried again later), failed (retry window over)",
      labelNames: ["result"],
      registers,
    });
    const backlog = () => this.#webhookBacklog;
    this.webhookPending = new Gauge({
      name: "boxoffice_webhook_deliveries_pending",
      help: "Webhook deliveries waiting to be delivered (all instances: read from the store)",
      registers,
      async collect() {
        const read = backlog();
        if (read) this.set(await read().catch(() => Number.NaN));
      },
    });
    this.waitingRoomAdmitted = new Counter({
      name: "boxoffice_waiting_room_admitted_total",
      help: "Buyers this instance's admission passes let in (rate() over the sum of instances: admitted per second)",
      labelNames: ["event"],
      registers,
    });
  }

  /** Reads the pending-deliveries gauge from `read` at each scrape. */
  watchWebhookBacklog(read: () => Promise<number>): void {
    this.#webhookBacklog = read;
  }

  /**
   * The waiting rooms' figures, read from the store when /metrics is scraped: the same in every instance
   * (the queue is the store's), so aggregate them with max, not sum. Admissions are counted by the
   * instance whose pass gave them (`boxoffice_waiting_room_admitted_total`; sum its rate over instances).
   */
  watchWaitingRooms(figures: () => Promise<RoomFigures[]>): void {
    // One read of the store per scrape, shared by the three gauges.
    let pending: Promise<RoomFigures[]> | null = null;
    const read = () => (pending ??= figures().finally(() => setTimeout(() => (pending = null), 0)));
    const gauge = (name: string, help: string, field: "waiting" | "active" | "abandoned") =>
      new Gauge({
        name,
        help,
        labelNames: ["event"],
        registers: [this.registry],
        async collect() {
          this.reset();
          for (const room of await read().catch(() => [])) this.set({ event: room.eventId }, room[field]);
        },
      });
    gauge(
      "boxoffice_waiting_room_waiting",
      "Buyers in a waiting room not let in yet (from the store: the same in every instance)",
      "waiting",
    );
    gauge(
      "boxoffice_waiting_room_active_shoppers",
      "Admitted buyers whose shopping session has not ended (from the store)",
      "active",
    );
    gauge(
      "boxoffice_waiting_room_abandoned",
      "Admitted buyers whose session ended without ever collecting their access token (from the store)",
      "abandoned",
    );
  }

  /** Feeds the sell path's events into the metrics. */
  sellPathObserver(): SellPathObserver {
    return {
      batchStarted: (size) => this.batchSize.observe(size),
      lockWaited: (waitMs) => this.lockWait.observe(waitMs / 1000),
      queueDepthChanged: (depth) => this.queueDepth.set(depth),
    };
  }
}
