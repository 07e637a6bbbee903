/**
 * The load client of the fault matrix: buyers that purchase, hold then confirm or release, cancel, and
 * leave carts to expire, on a general-admission and a seated event, as customers shared by all buyers.
 * Every attempt is one ClientRecord (src/rehearsal/client-log.ts), the log the verifier reads. A buyer
 * retries a 503, a "key in use" and a request with no answer with the same Idempotency-Key, honouring
 * Retry-After, a few times, then leaves it in doubt for the verifier to settle. Some buyers send their
 * keyed purchases straight to one chosen instance (the victim of the fault), so that a test knows which
 * requests were in flight on it at the fault.
 */
import { randomUUID } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Agent, request } from "undici";
import type { ClientRecord, ClientRecordKind } from "../../src/rehearsal/client-log.js";

export interface WorkloadEvent {
  id: string;
  /** General admission: null; seated: every seat id. */
  seats: string[] | null;
}

export interface WorkloadOptions {
  baseUrl: string;
  general: WorkloadEvent;
  seated: WorkloadEvent;
  /** Customers shared by every buyer and both events. */
  customers: number;
  /** Buyers through `baseUrl`. */
  buyers: number;
  /** Buyers sending keyed purchases straight to `victimUrl` until `stopDirect()`. */
  directBuyers: number;
  victimUrl: string | null;
  /** Carts left to expire, made at the start with the shortest lifetime (30 s). */
  abandonedHolds: number;
  /** Longest wait for one answer before it counts as none. */
  requestTimeoutMs: number;
  seed: number;
}

/** A small deterministic generator (mulberry32), so that a run's mix can be repeated. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class FaultWorkload {
  readonly records: ClientRecord[] = [];
  /** The records of the requests sent straight to the victim. */
  readonly directRecords: ClientRecord[] = [];
  /** Requests sent straight to the victim and not answered yet. */
  directInFlight = 0;
  /** Abandoned carts: hold id → expiry (ms since the epoch). */
  readonly abandoned = new Map<string, number>();
  readonly #options: WorkloadOptions;
  readonly #agent: Agent;
  readonly #random: () => number;
  #stopped = false;
  #directStopped = false;
  #running: Promise<void> | null = null;
  /** The Retry-After of each answer that had one, in seconds. */
  readonly #retryAfter = new WeakMap<ClientRecord, number>();

  constructor(options: WorkloadOptions) {
    this.#options = options;
    this.#agent = new Agent({ connections: 64, keepAliveTimeout: 4000 });
    this.#random = generator(options.seed);
  }

  /** Tickets the client got answered with a 201 purchase or confirm so far. */
  get sales(): number {
    return this.records.filter(
      (record) => record.status === 201 && (record.kind === "purchase" || record.kind === "confirm"),
    ).length;
  }

  start(): void {
    const buyers = Array.from({ length: this.#options.buyers }, (_, index) => this.#buyer(index));
    const direct = Array.from({ length: this.#options.directBuyers }, (_, index) => this.#directBuyer(index));
    this.#running = Promise.all([...buyers, ...direct]).then(() => undefined);
  }

  /** The direct buyers stop sending (their requests in doubt are retried through the base URL). */
  stopDirect(): void {
    this.#directStopped = true;
  }

  /** Stops every buyer and waits until each has its last answer or gave up on it. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#directStopped = true;
    await this.#running;
    await this.#agent.close();
  }

  #pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.#random() * items.length)]!;
  }

  #customer(): string {
    return `cust-${Math.floor(this.#random() * this.#options.customers)}`;
  }

  /** A general-admission or seated selection. */
  #selection(): { event: WorkloadEvent; body: Record<string, unknown> } {
    if (this.#random() < 0.5) {
      return { event: this.#options.general, body: { quantity: 1 + Math.floor(this.#random() * 2) } };
    }
    const seats = this.#options.seated.seats!;
    const first = this.#pick(seats);
    const chosen = new Set([first]);
    if (this.#random() < 0.4) chosen.add(this.#pick(seats));
    return { event: this.#options.seated, body: { seats: [...chosen] } };
  }

  async #buyer(index: number): Promise<void> {
    const orders: { id: string; eventId: string; secret: string }[] = [];
    for (let held = index; held < this.#options.abandonedHolds; held += this.#options.buyers) {
      const { event, body } = this.#selection();
      const answer = await this.#send(
        "hold",
        event.id,
        "POST",
        `/v1/events/${event.id}/holds`,
        {
          ...body,
          customerId: this.#customer(),
          ttlSeconds: 30,
        },
        randomUUID(),
      );
      const id = answer?.status === 201 ? (answer.response as { id: string; expiresAt: string }) : null;
      if (id !== null) this.abandoned.set(id.id, Date.parse(id.expiresAt));
    }
    while (!this.#stopped) {
      const roll = this.#random();
      if (roll < 0.55) {
        const { event, body } = this.#selection();
        const path = `/v1/events/${event.id}/orders`;
        const sent = { ...body, customerId: this.#customer() };
        const key = randomUUID();
        const answer = await this.#send("purchase", event.id, "POST", path, sent, key);
        if (answer?.status === 201) {
          const { id, secret } = answer.response as { id: string; secret: string };
          orders.push({ id, eventId: event.id, secret });
          // A buyer who clicks twice: the same key and body again must answer the same order.
          if (this.#random() < 0.1) await this.#send("purchase", event.id, "POST", path, sent, key);
        }
      } else if (roll < 0.85) {
        const { event, body } = this.#selection();
        const hold = await this.#send(
          "hold",
          event.id,
          "POST",
          `/v1/events/${event.id}/holds`,
          { ...body, customerId: this.#customer() },
          randomUUID(),
        );
        if (hold?.status !== 201) continue;
        const { id: holdId, secret: holdSecret } = hold.response as { id: string; secret: string };
        // Acting on a hold or an order needs its secret (docs/api.md, "Order access").
        const owner = { "x-order-secret": holdSecret };
        if (this.#random() < 0.6) {
          const path = `/v1/holds/${holdId}/confirm`;
          const order = await this.#send("confirm", event.id, "POST", path, null, randomUUID(), owner);
          if (order?.status === 201) {
            const { id, secret } = order.response as { id: string; secret: string };
            orders.push({ id, eventId: event.id, secret });
          }
        } else {
          await this.#send("release", event.id, "DELETE", `/v1/holds/${holdId}`, null, null, owner);
        }
      } else if (orders.length > 0) {
        const order = orders.splice(Math.floor(this.#random() * orders.length), 1)[0]!;
        await this.#send("cancel", order.eventId, "POST", `/v1/orders/${order.id}/cancel`, null, null, {
          "x-order-secret": order.secret,
        });
      }
    }
  }

  /**
   * One keyed general-admission purchase sent straight to `instanceUrl` (recorded like every other);
   * a fault uses it to make another instance take the event's lock while the victim is stopped.
   */
  async purchaseOn(instanceUrl: string): Promise<ClientRecord> {
    const event = this.#options.general;
    const body = { customerId: this.#customer(), quantity: 1 };
    return this.#attempt(
      instanceUrl,
      "purchase",
      event.id,
      "POST",
      `/v1/events/${event.id}/orders`,
      body,
      randomUUID(),
    );
  }

  /** Keyed general-admission purchases sent to the victim; once it is gone, retried through the base URL. */
  async #directBuyer(index: number): Promise<void> {
    const victim = this.#options.victimUrl;
    if (victim === null) return;
    const event = this.#options.general;
    const path = `/v1/events/${event.id}/orders`;
    for (let count = 0; !this.#directStopped; count++) {
      const body = { customerId: `direct-${index}-${count % 50}`, quantity: 1 };
      const key = randomUUID();
      this.directInFlight++;
      const answer = await this.#attempt(victim, "purchase", event.id, "POST", path, body, key);
      this.directInFlight--;
      this.directRecords.push(answer);
      if (answer.status === null || answer.status >= 500 || answer.status === 409) {
        // The victim is gone or stopped: settle this key through the balancer, as a client would.
        await this.#send("purchase", event.id, "POST", path, body, key);
      }
    }
  }

  /**
   * One request with retries: a 503, a 409 "key in use" or no answer is tried again with the same key
   * (a keyless release or cancel too: repeating them changes nothing), at most 4 times.
   */
  async #send(
    kind: ClientRecordKind,
    eventId: string,
    method: string,
    path: string,
    body: unknown,
    key: string | null = null,
    extraHeaders: Record<string, string> | null = null,
  ): Promise<ClientRecord | null> {
    let last: ClientRecord | null = null;
    for (let attempt = 0; attempt < 4; attempt++) {
      last = await this.#attempt(this.#options.baseUrl, kind, eventId, method, path, body, key, extraHeaders);
      const inUse =
        last.status === 409 && (last.response as { code?: string } | null)?.code === "idempotency_key_in_use";
      if (last.status !== null && last.status < 500 && !inUse) return last;
      if (this.#stopped && attempt >= 1) return last;
      const retryAfterSeconds = this.#retryAfter.get(last);
      await sleep(retryAfterSeconds === undefined ? 200 : Math.min(retryAfterSeconds, 2) * 1000);
    }
    return last;
  }

  async #attempt(
    baseUrl: string,
    kind: ClientRecordKind,
    eventId: string,
    method: string,
    path: string,
    body: unknown,
    key: string | null,
    extraHeaders: Record<string, string> | null = null,
  ): Promise<ClientRecord> {
    const headers: Record<string, string> = { ...extraHeaders };
    if (body !== null) headers["content-type"] = "application/json";
    if (key !== null) headers["idempotency-key"] = key;
    const startedAtMs = Date.now();
    const record: ClientRecord = {
      kind,
      eventId,
      idempotencyKey: key,
      method,
      path,
      body,
      status: null,
      response: null,
      startedAtMs,
      endedAtMs: startedAtMs,
      instance: null,
      ...(extraHeaders === null ? {} : { headers: extraHeaders }),
    };
    try {
      const response = await request(`${baseUrl}${path}`, {
        method: method as "POST",
        headers,
        body: body === null ? undefined : JSON.stringify(body),
        dispatcher: this.#agent,
        headersTimeout: this.#options.requestTimeoutMs,
        bodyTimeout: this.#options.requestTimeoutMs,
      });
      const text = await response.body.text();
      record.status = response.statusCode;
      record.response = text === "" ? null : (JSON.parse(text) as unknown);
      record.instance = (response.headers["x-served-by"] as string | undefined) ?? null;
      const retryAfter = Number(response.headers["retry-after"]);
      if (Number.isFinite(retryAfter)) this.#retryAfter.set(record, retryAfter);
    } catch {
      record.status = null;
    }
    record.endedAtMs = Date.now();
    this.records.push(record);
    return record;
  }
}
