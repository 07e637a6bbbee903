/**
 * Caps the retries of requests that already reached an instance, so that retries cannot multiply the
 * load on a struggling cluster (the "retry storm"). A token bucket: every request adds `ratio` of a
 * token, every such retry takes one; a floor of `minPerSecond` tokens is granted each second so that a
 * quiet balancer can still retry. Retries of requests that never reached an instance are free.
 */
export class RetryBudget {
  readonly #ratio: number;
  readonly #minPerSecond: number;
  readonly #capacity: number;
  #tokens: number;
  #floorGrantedAtMs = 0;

  constructor(ratio: number, minPerSecond: number) {
    this.#ratio = ratio;
    this.#minPerSecond = minPerSecond;
    // Bounded, so that a long quiet spell cannot store up a storm.
    this.#capacity = Math.max(minPerSecond, 100);
    this.#tokens = minPerSecond;
  }

  /** Counts one request toward the budget. */
  recordRequest(): void {
    this.#tokens = Math.min(this.#capacity, this.#tokens + this.#ratio);
  }

  /** Takes a token for one retry; false when the budget is spent. */
  tryRetry(nowMs = Date.now()): boolean {
    if (nowMs - this.#floorGrantedAtMs >= 1000) {
      this.#floorGrantedAtMs = nowMs;
      this.#tokens = Math.max(this.#tokens, this.#minPerSecond);
    }
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}
