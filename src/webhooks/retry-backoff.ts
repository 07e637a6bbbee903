/**
 * When a failed delivery is tried again: exponential backoff with full jitter (the wait before attempt
 * n + 1 is drawn uniformly from 0 to min(maxMs, baseMs · 2^(n-1))), so that many deliveries that failed
 * together (an endpoint down) do not come back together. Retries go on until the delivery is older than
 * the retry window (24 hours by default), then it is marked failed.
 */

export interface RetryPolicy {
  /** The ceiling of the first wait. */
  baseMs: number;
  /** No wait is longer than this. */
  maxMs: number;
  /** How long a delivery is retried, from its first attempt (or its replay), before it fails. */
  windowMs: number;
}

/** The most any wait can be after `attempt` failed attempts (1 for the first). */
export function retryCeilingMs(policy: Pick<RetryPolicy, "baseMs" | "maxMs">, attempt: number): number {
  const exponent = Math.min(Math.max(attempt, 1) - 1, 52);
  return Math.min(policy.maxMs, policy.baseMs * 2 ** exponent);
}

/** The wait after `attempt` failed attempts, drawn with `random` (0 ≤ random() < 1). */
export function retryDelayMs(
  policy: Pick<RetryPolicy, "baseMs" | "maxMs">,
  attempt: number,
  random: () => number = Math.random,
): number {
  return Math.floor(random() * retryCeilingMs(policy, attempt));
}
