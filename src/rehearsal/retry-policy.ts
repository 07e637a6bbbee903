/**
 * When a rehearsal client tries a request again, and after how long. Like a careful real client: a
 * request cut off (connection refused or reset, no answer in time) or answered "not now" (503, 502,
 * 504, 429, and 409 idempotency_key_in_use) is sent again with the SAME Idempotency-Key, after the
 * server's Retry-After when it gave one, else after an exponential backoff with full jitter; at most
 * `maxAttempts` attempts in all. Any other answer is final.
 */
import type { Random } from "./random.js";

export interface RetryPolicy {
  /** Attempts per request, the first included. */
  maxAttempts: number;
  /** The longest wait before a retry; a Retry-After beyond it ends the attempts. */
  maxWaitMs: number;
  /** The first backoff's ceiling when the server said nothing; doubles with each attempt. */
  baseBackoffMs: number;
}

/** How an attempt ended, as far as retrying is concerned. */
export type AttemptEnd =
  | { kind: "answer"; status: number; retryAfter: string | null; code: string | null }
  | { kind: "cut-off"; error: string };

export type RetryDecision = { retry: true; waitMs: number } | { retry: false; reason: string };

const RETRIED_STATUSES = new Set([429, 502, 503, 504]);

/** Whether an attempt's end says "try again later" rather than giving an answer. */
export function isRetryable(end: AttemptEnd): boolean {
  if (end.kind === "cut-off") return true;
  if (RETRIED_STATUSES.has(end.status)) return true;
  return end.status === 409 && end.code === "idempotency_key_in_use";
}

/**
 * Retry-After in milliseconds from `nowMs`: delta-seconds ("2") or an HTTP date; null when absent or
 * unreadable.
 */
export function retryAfterMs(value: string | null, nowMs: number): number | null {
  if (value === null) return null;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  const date = Date.parse(text);
  if (Number.isNaN(date)) return null;
  return Math.max(0, date - nowMs);
}

/**
 * What to do after attempt number `attempt` (1 for the first) ended as `end`. A Retry-After is honoured
 * as a floor: the wait is at least what the server asked, plus up to a tenth more (at most 250 ms), so
 * that the buyers refused together do not all come back in the same millisecond.
 */
export function decideRetry(
  policy: RetryPolicy,
  attempt: number,
  end: AttemptEnd,
  random: Random,
  nowMs: number = Date.now(),
): RetryDecision {
  if (!isRetryable(end)) return { retry: false, reason: "answered" };
  if (attempt >= policy.maxAttempts) {
    return { retry: false, reason: `no answer after ${attempt} attempt${attempt === 1 ? "" : "s"}` };
  }
  const asked = end.kind === "answer" ? retryAfterMs(end.retryAfter, nowMs) : null;
  if (asked !== null) {
    if (asked > policy.maxWaitMs) {
      return {
        retry: false,
        reason: `Retry-After ${asked} ms is beyond the longest wait, ${policy.maxWaitMs} ms`,
      };
    }
    return { retry: true, waitMs: asked + random() * Math.min(250, asked / 10) };
  }
  const ceilingMs = Math.min(policy.maxWaitMs, policy.baseBackoffMs * 2 ** (attempt - 1));
  return { retry: true, waitMs: random() * ceilingMs };
}
