/**
 * Gives the tickets of expired holds back. Every instance runs one; the store guarantees each hold is
 * released exactly once however many sweep at the same moment, so the sweepers need no coordination.
 * The interval is jittered so that instances started together do not sweep in lockstep.
 */
import type { Store } from "../store/store.js";
import { IDEMPOTENCY_RETENTION_MS } from "../domain/sale.js";
import { KEY_IDLE_MS } from "../lock/lock-provider.js";

export interface HoldSweeperOptions {
  store: Store;
  /** Mean time between sweeps; each wait is drawn from 0.5× to 1.5× of it. */
  intervalMs: number;
  /** At most this many holds expired per sweep; a full sweep runs again at once. */
  limit: number;
  /** How often old idempotency records and idle fences are pruned. */
  pruneIntervalMs: number;
  /** Called with each error (the sweep goes on at the next tick). */
  onError?: (error: unknown) => void;
  /** Called after a sweep that expired holds. */
  onExpired?: (count: number) => void;
  now?: () => Date;
}

export class HoldSweeper {
  readonly #options: HoldSweeperOptions;
  readonly #now: () => Date;
  #timer: NodeJS.Timeout | null = null;
  #running: Promise<void> | null = null;
  #lastPruneMs = 0;
  #closed = false;

  constructor(options: HoldSweeperOptions) {
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
  }

  /** Starts sweeping; the first sweep is soon after. */
  init(): void {
    if (this.#closed || this.#timer) return;
    this.#lastPruneMs = Date.now();
    this.#schedule();
  }

  /** Runs one sweep now (also used by tests); resolves with how many holds it expired. */
  async sweepOnce(): Promise<number> {
    const { store, limit, pruneIntervalMs } = this.#options;
    let expired = 0;
    // Bounded: a backlog larger than a few sweeps' worth waits for the next tick.
    for (let round = 0; round < 10; round++) {
      const count = await store.expireHolds(this.#now(), limit);
      expired += count;
      if (count < limit) break;
    }
    if (expired > 0) this.#options.onExpired?.(expired);
    if (Date.now() - this.#lastPruneMs >= pruneIntervalMs) {
      this.#lastPruneMs = Date.now();
      await store.pruneIdempotency(new Date(this.#now().getTime() - IDEMPOTENCY_RETENTION_MS));
      await store.pruneFences(new Date(this.#now().getTime() - KEY_IDLE_MS));
    }
    return expired;
  }

  /** Stops the timer and waits for a running sweep. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.#running;
  }

  #schedule(): void {
    if (this.#closed) return;
    const delayMs = this.#options.intervalMs * (0.5 + Math.random());
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#running = this.sweepOnce()
        .then(
          () => undefined,
          (error: unknown) => this.#options.onError?.(error),
        )
        .finally(() => {
          this.#running = null;
          this.#schedule();
        });
    }, delayMs);
    // The sweeper alone must not keep the process alive.
    this.#timer.unref();
  }
}
