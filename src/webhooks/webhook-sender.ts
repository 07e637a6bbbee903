/**
 * Sends one signed attempt over HTTP with undici: a connect timeout, a headers timeout, a body
 * timeout and a deadline for the whole attempt; redirects are not followed (a 3xx is a failed attempt);
 * the answer's body is read and thrown away (never kept, never logged). Only a 2xx answer delivers.
 */
import { Agent, request } from "undici";
import { webhookHeaders } from "./webhook-signer.js";

export interface SendResult {
  delivered: boolean;
  statusCode: number | null;
  /** Why it was not delivered (an HTTP status or the network error's code); null when delivered. */
  error: string | null;
}

export interface WebhookSenderOptions {
  /** Each of connect, headers and body may take this long, and the whole attempt as well. */
  timeoutMs: number;
  /** Sent as User-Agent. */
  userAgent: string;
  /** Connections kept per origin. */
  connectionsPerOrigin?: number;
}

export class WebhookSender {
  readonly #agent: Agent;
  readonly #options: WebhookSenderOptions;

  constructor(options: WebhookSenderOptions) {
    this.#options = options;
    this.#agent = new Agent({
      connect: { timeout: options.timeoutMs },
      headersTimeout: options.timeoutMs,
      bodyTimeout: options.timeoutMs,
      connections: options.connectionsPerOrigin ?? 8,
      keepAliveTimeout: 4_000,
    });
  }

  /** The longest one attempt can take. */
  get attemptDeadlineMs(): number {
    return this.#options.timeoutMs;
  }

  /**
   * One attempt: POSTs `body` to `url`, signed now with `secret`. Never throws; `stop` aborts it (the
   * relay closing).
   */
  async send(
    url: string,
    secret: string,
    messageId: string,
    body: string,
    stop: AbortSignal,
  ): Promise<SendResult> {
    const signal = AbortSignal.any([stop, AbortSignal.timeout(this.#options.timeoutMs)]);
    try {
      const timestampSeconds = Math.floor(Date.now() / 1000);
      const answer = await request(url, {
        method: "POST",
        dispatcher: this.#agent,
        signal,
        headers: {
          "content-type": "application/json",
          "user-agent": this.#options.userAgent,
          ...webhookHeaders(secret, messageId, timestampSeconds, body),
        },
        body,
      });
      // Read and dropped, so the connection can be reused; a receiver's body is never kept.
      await answer.body.dump({ limit: 64 * 1024, signal });
      const delivered = answer.statusCode >= 200 && answer.statusCode < 300;
      return {
        delivered,
        statusCode: answer.statusCode,
        error: delivered ? null : `HTTP ${answer.statusCode}`,
      };
    } catch (error) {
      return { delivered: false, statusCode: null, error: describe(error, signal) };
    }
  }

  async close(): Promise<void> {
    await this.#agent.destroy();
  }
}

/** A short, stable description of a failed attempt: the error's code, never a body. */
function describe(error: unknown, signal: AbortSignal): string {
  if (signal.aborted) return "timed out or stopped";
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === "string") return code;
  return error instanceof Error ? error.name : "failed";
}
