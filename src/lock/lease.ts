/**
 * What every leasing provider (file, redis, redlock) shares: waiting for a lock within a bounded time,
 * and holding it while the work runs — renewing the lease at a third of its length, aborting the work
 * through its AbortSignal when the lease is lost or runs out, and releasing it when the work settles.
 * All deadlines are measured on this process's monotonic clock (`performance.now()`), never the wall clock.
 */
import { setTimeout as sleep } from "node:timers/promises";
import { BoxofficeError } from "../domain/errors.js";
import type { WriteGuard } from "../domain/write-guard.js";
import { LockBusyError, LockLostError } from "../domain/lock-errors.js";
import type { LockOptions } from "./lock-provider.js";
import type { LocalQueue } from "./local-queue.js";

/** A lock this process holds, as a provider's backend sees it. */
export interface HeldLease {
  /** The fencing token issued with this acquisition. */
  fence: number | null;
  /** `performance.now()` after which the lease must be presumed gone. */
  validUntilMs: number;
  /**
   * Renews the lease. Resolves to the new `validUntilMs`, or to null when the lease is certainly gone
   * (expired and taken, or deleted). Throws when the backend did not answer: the holder keeps trying
   * until its lease runs out.
   */
  extend(): Promise<number | null>;
  /** Gives the lock back if this holder still owns it (compare-and-delete). */
  release(): Promise<void>;
}

/** One try at taking a lock: held, or busy (someone else holds it). Backend failures are thrown. */
export type AcquireAttempt = HeldLease | "busy";

/** The first retry after a busy answer waits about this long; later ones back off up to the cap. */
const FIRST_RETRY_MS = 1;
const MAX_RETRY_MS = 10;

/**
 * Calls `attempt` until it returns a lease or `waitMs` since `startedMs` has passed (LockBusyError); it
 * always tries at least once. Retries back off with full jitter so that waiters on one key do not knock
 * in step. Errors from `attempt` pass through.
 */
export async function acquireWithin(
  key: string,
  waitMs: number,
  attempt: () => Promise<AcquireAttempt>,
  startedMs: number = performance.now(),
): Promise<HeldLease> {
  const deadlineMs = startedMs + waitMs;
  let retryMs = FIRST_RETRY_MS;
  for (;;) {
    const result = await attempt();
    if (result !== "busy") return result;
    const leftMs = deadlineMs - performance.now();
    if (leftMs <= 0) throw new LockBusyError(key, waitMs);
    await sleep(Math.min(leftMs, 1 + Math.random() * retryMs));
    retryMs = Math.min(MAX_RETRY_MS, retryMs * 2);
  }
}

/**
 * Runs `work` under `lease`, renewing it every `leaseMs / 3`. When the lease is lost (renewal says it is
 * gone, or its validity runs out because renewals did not get through) the work's signal is aborted with
 * a LockLostError. After the work settles, renewal stops and the lease is released.
 *
 * The work's result wins: if it resolved, its write committed before the abort (the store checks the
 * signal before committing), so the value is returned. A work that failed after the abort with an error
 * that is not one of ours is reported as LockLostError.
 */
export async function holdWhile<T>(
  key: string,
  leaseMs: number,
  lease: HeldLease,
  work: (guard: WriteGuard) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let validUntilMs = lease.validUntilMs;
  let settled = false;
  let renewing: Promise<void> | null = null;
  let renewTimer: NodeJS.Timeout | undefined;
  let deadlineTimer: NodeJS.Timeout | undefined;

  const stopTimers = (): void => {
    clearTimeout(renewTimer);
    clearTimeout(deadlineTimer);
  };
  const lose = (cause?: unknown): void => {
    stopTimers();
    if (!controller.signal.aborted) controller.abort(new LockLostError(key, cause));
  };
  const armDeadline = (): void => {
    clearTimeout(deadlineTimer);
    deadlineTimer = setTimeout(lose, Math.max(0, validUntilMs - performance.now()));
  };
  const renewEveryMs = Math.max(1, Math.floor(leaseMs / 3));
  const renew = async (): Promise<void> => {
    try {
      const nextValidUntilMs = await lease.extend();
      if (settled || controller.signal.aborted) return;
      if (nextValidUntilMs === null) return lose();
      validUntilMs = nextValidUntilMs;
      armDeadline();
    } catch {
      // The backend did not answer: the lease may still stand. Try again; the deadline timer aborts the
      // work if no renewal gets through before the lease runs out.
    }
    if (!settled && !controller.signal.aborted) scheduleRenewal();
  };
  const scheduleRenewal = (): void => {
    renewTimer = setTimeout(() => {
      renewing = renew();
    }, renewEveryMs);
  };

  if (validUntilMs <= performance.now()) lose();
  else {
    armDeadline();
    scheduleRenewal();
  }

  try {
    return await work({ lockKey: key, fence: lease.fence, signal: controller.signal });
  } catch (error) {
    if (controller.signal.aborted && !(error instanceof BoxofficeError)) throw new LockLostError(key, error);
    throw error;
  } finally {
    settled = true;
    stopTimers();
    await renewing;
    // A failed release is harmless: the lease runs out by itself, and nobody else's lock is touched.
    await lease.release().catch(() => undefined);
  }
}

/**
 * The whole `withLock` of a leasing provider: line up in this process's queue for `key`, take the lock
 * with `attempt` within what is left of `waitMs`, and run `work` under the lease.
 */
export async function withLease<T>(
  queue: LocalQueue,
  key: string,
  options: LockOptions,
  attempt: () => Promise<AcquireAttempt>,
  work: (guard: WriteGuard) => Promise<T>,
): Promise<T> {
  const startedMs = performance.now();
  const leave = await queue.enter(key, options.waitMs);
  try {
    const lease = await acquireWithin(key, options.waitMs, attempt, startedMs);
    return await holdWhile(key, options.leaseMs, lease, work);
  } finally {
    leave();
  }
}

/** A fencing token floor that survives a lock server losing its counter: the wall clock in µs. */
export function wallClockMicros(): number {
  return Date.now() * 1000;
}
