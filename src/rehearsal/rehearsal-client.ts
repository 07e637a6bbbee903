/**
 * The buyers' HTTP client: one undici Pool to the rehearsed URL with a bounded number of connections
 * (requests beyond them wait in the pool's queue, as a browser's would). `send` makes one request
 * through the retry policy and records every attempt as a ClientRecord, the verifier's evidence of what
 * the clients asked and were told, answers and cut-offs alike.
 */
import { Pool } from "undici";
import type { ClientRecord } from "./client-log.js";
import type { Random } from "./random.js";
import type { AttemptEnd, RetryPolicy } from "./retry-policy.js";
import { decideRetry } from "./retry-policy.js";

/** One request a buyer wants answered. */
export interface RequestSpec {
  kind: ClientRecord["kind"];
  eventId: string;
  method: "GET" | "POST" | "DELETE";
  path: string;
  /** Sent as JSON when not undefined. */
  body?: unknown;
  /** The same on every attempt: what makes a retry safe. */
  idempotencyKey: string | null;
  /** More headers, e.g. a waiting room's pass. */
  headers?: Readonly<Record<string, string>>;
}

/** The request's last attempt: an answer (status and parsed body), or none (status null). */
export interface FinalAnswer {
  status: number | null;
  body: unknown;
  attempts: number;
}

/** An answer at the door (RehearsalClient.door). */
export interface DoorAnswer {
  status: number | null;
  body: unknown;
  retryAfterSeconds: number | null;
}

export interface RehearsalClientOptions {
  url: string;
  connections: number;
  requestTimeoutMs: number;
  retry: RetryPolicy;
  random: Random;
  /** Called with every attempt's record, in the order the attempts end. */
  record: (record: ClientRecord) => void;
  /** How the client waits before a retry; tests pass their own to see the waits. */
  sleep?: (ms: number) => Promise<void>;
  adminToken?: string | null;
}

const defaultSleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export class RehearsalClient {
  readonly #pool: Pool;
  readonly #options: RehearsalClientOptions;
  readonly #sleep: (ms: number) => Promise<void>;
  #closed = false;

  constructor(options: RehearsalClientOptions) {
    this.#options = options;
    this.#sleep = options.sleep ?? defaultSleep;
    this.#pool = new Pool(options.url, {
      connections: options.connections,
      keepAliveTimeout: 10_000,
      headersTimeout: options.requestTimeoutMs,
      bodyTimeout: options.requestTimeoutMs,
    });
  }

  /** Sends `spec`, retrying as the policy says with the same Idempotency-Key; every attempt is recorded. */
  async send(spec: RequestSpec): Promise<FinalAnswer> {
    const headers: Record<string, string> = { ...spec.headers };
    const body = spec.body === undefined ? undefined : JSON.stringify(spec.body);
    if (body !== undefined) headers["content-type"] = "application/json";
    if (spec.idempotencyKey !== null) headers["idempotency-key"] = spec.idempotencyKey;
    for (let attempt = 1; ; attempt++) {
      const startedAtMs = Date.now();
      let end: AttemptEnd;
      let status: number | null = null;
      let response: unknown = null;
      let instance: string | null = null;
      try {
        const answer = await this.#pool.request({
          path: spec.path,
          method: spec.method,
          headers,
          body,
          signal: AbortSignal.timeout(this.#options.requestTimeoutMs),
        });
        const text = await answer.body.text();
        status = answer.statusCode;
        response = parseBody(text, String(answer.headers["content-type"] ?? ""));
        instance = firstHeader(answer.headers["x-served-by"]);
        end = {
          kind: "answer",
          status,
          retryAfter: firstHeader(answer.headers["retry-after"]),
          code: problemCode(response),
        };
      } catch (error) {
        end = { kind: "cut-off", error: (error as Error).message };
        response = { error: (error as Error).message };
      }
      this.#options.record({
        kind: spec.kind,
        eventId: spec.eventId,
        idempotencyKey: spec.idempotencyKey,
        method: spec.method,
        path: spec.path,
        body: spec.body ?? null,
        // A waiting room's pass goes with a replay too (the verifier sends these headers again).
        ...(spec.headers && Object.keys(spec.headers).length > 0 ? { headers: spec.headers } : {}),
        status,
        response,
        startedAtMs,
        endedAtMs: Date.now(),
        instance,
      });
      const decision = decideRetry(this.#options.retry, attempt, end, this.#options.random);
      if (!decision.retry || this.#closed) return { status, body: response, attempts: attempt };
      await this.#sleep(decision.waitMs);
    }
  }

  /**
   * An admin or setup request (create an event, read a seat map), not a buyer's: not recorded, retried
   * the same way. Throws when it gets no answer.
   */
  async admin<T>(method: "GET" | "POST", path: string, body?: unknown): Promise<{ status: number; body: T }> {
    const headers: Record<string, string> = {};
    if (this.#options.adminToken) headers.authorization = `Bearer ${this.#options.adminToken}`;
    if (body !== undefined) headers["content-type"] = "application/json";
    for (let attempt = 1; ; attempt++) {
      let end: AttemptEnd;
      try {
        const answer = await this.#pool.request({
          path,
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: AbortSignal.timeout(this.#options.requestTimeoutMs),
        });
        const text = await answer.body.text();
        const parsed = parseBody(text, String(answer.headers["content-type"] ?? ""));
        end = {
          kind: "answer",
          status: answer.statusCode,
          retryAfter: firstHeader(answer.headers["retry-after"]),
          code: problemCode(parsed),
        };
        const decision = decideRetry(this.#options.retry, attempt, end, this.#options.random);
        if (!decision.retry) return { status: answer.statusCode, body: parsed as T };
        await this.#sleep(decision.waitMs);
      } catch (error) {
        end = { kind: "cut-off", error: (error as Error).message };
        const decision = decideRetry(this.#options.retry, attempt, end, this.#options.random);
        if (!decision.retry) throw new Error(`${method} ${path}: no answer (${(error as Error).message})`);
        await this.#sleep(decision.waitMs);
      }
    }
  }

  /**
   * A buyer's request at the door (joining a waiting room's queue, polling its place): not a record of
   * the sale and not retried here: the door follows the answer's own timing (pollAfterMs, Retry-After).
   * Status null when no answer came.
   */
  async door(
    method: "GET" | "POST",
    path: string,
    headers: Readonly<Record<string, string>> = {},
  ): Promise<DoorAnswer> {
    try {
      const answer = await this.#pool.request({
        path,
        method,
        headers: method === "POST" ? { ...headers, "content-type": "application/json" } : headers,
        body: method === "POST" ? "{}" : undefined,
        signal: AbortSignal.timeout(this.#options.requestTimeoutMs),
      });
      const text = await answer.body.text();
      const retryAfter = Number(firstHeader(answer.headers["retry-after"]) ?? Number.NaN);
      return {
        status: answer.statusCode,
        body: parseBody(text, String(answer.headers["content-type"] ?? "")),
        retryAfterSeconds: Number.isFinite(retryAfter) ? retryAfter : null,
      };
    } catch {
      return { status: null, body: null, retryAfterSeconds: null };
    }
  }

  /** Stops retrying (each request ends after its current attempt) and closes the connections. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.close();
  }
}

function firstHeader(value: string | string[] | undefined): string | null {
  if (value === undefined) return null;
  return Array.isArray(value) ? (value[0] ?? null) : value;
}

function parseBody(text: string, contentType: string): unknown {
  if (text === "") return null;
  if (!contentType.includes("json")) return text;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

function problemCode(body: unknown): string | null {
  if (typeof body !== "object" || body === null || !("code" in body)) return null;
  const code = (body as { code: unknown }).code;
  return typeof code === "string" ? code : null;
}
