/**
 * What every leasing provider (file, redis, redlock) shares: waiting for a lock within a bounded time,
 * and holding it while the work runs — renewing the lease at a third of its length, aborting the work
 * through its AbortSignal when the lease is lost or runs out, and releasing it when the work settles.
 * All deadlines are measured on this process's monotonic clock (`performance.now()`), never the wall clock.
 */
import { BoxofficeError } from "../domain/errors.js";
import type { WriteGuard } from "../domain/write-guard.js";
import { LockBusyError, LockLostError } from "../domain/lock-errors.js";
import type { LockOptions, ManyLockWork } from "./lock-provider.js";
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
/** The default cap of the backoff between tries at a busy lock. */
export const MAX_RETRY_MS = 10;

/**
 * Subscribes `listener` to the release notifications of `key` (LockProvider.onReleased): called at each
 * release of `key` seen, by any holder, until the returned function is called. A hint only.
 */
export type OnReleased = (key: string, listener: () => void) => () => void;

/** How a waiter learns that it may try again: a release notification, else its backoff. */
export interface RetryOptions {
  /** The provider's release notifications; without them, only the backoff. */
  onReleased?: OnReleased;
  /** The first backoff after a busy answer is up to 1 ms more than this (default 1 ms; tests lengthen it). */
  firstRetryMs?: number;
  /** The cap of the backoff between tries (default MAX_RETRY_MS; tests lengthen it). */
  maxRetryMs?: number;
}

/**
 * Calls `attempt` until it returns a lease or `waitMs` since `startedMs` has passed (LockBusyError); it
 * always tries at least once. Between tries it waits for the release of `key` (when the provider tells
 * of releases) or its backoff, whichever comes first: the notification makes the hand-over immediate,
 * the backoff (full jitter, doubling up to the cap, so that waiters on one key do not knock in step) is
 * what is left when a notification is lost. The subscription is taken before the first try, so a
 * release that lands while a try is on its way is not missed: the next try follows at once. Errors from
 * `attempt` pass through.
 */
export async function acquireWithin(
  key: string,
  waitMs: number,
  attempt: () => Promise<AcquireAttempt>,
  startedMs: number = performance.now(),
  retry: RetryOptions = {},
): Promise<HeldLease> {
  const deadlineMs = startedMs + waitMs;
  const maxRetryMs = retry.maxRetryMs ?? MAX_RETRY_MS;
  let retryMs = retry.firstRetryMs ?? FIRST_RETRY_MS;
  let released = false;
  let wake: (() => void) | null = null;
  const unsubscribe = retry.onReleased?.(key, () => {
    released = true;
    wake?.();
  });
  try {
    for (;;) {
      released = false;
      const result = await attempt();
      if (result !== "busy") return result;
      const leftMs = deadlineMs - performance.now();
      if (leftMs <= 0) throw new LockBusyError(key, waitMs);
      if (released) continue;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(
          () => {
            wake = null;
            resolve();
          },
          Math.min(leftMs, 1 + Math.random() * retryMs),
        );
        wake = () => {
          wake = null;
          clearTimeout(timer);
          resolve();
        };
      });
      retryMs = Math.min(maxRetryMs, retryMs * 2);
    }
  } finally {
    unsubscribe?.();
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
 * with `attempt` within what is left of `waitMs` (woken by `retry.onReleased` where the provider has
 * it), and run `work` under the lease.
 */
export async function withLease<T>(
  queue: LocalQueue,
  key: string,
  options: LockOptions,
  attempt: () => Promise<AcquireAttempt>,
  work: (guard: WriteGuard) => Promise<T>,
  retry: RetryOptions = {},
): Promise<T> {
  const startedMs = performance.now();
  const leave = await queue.enter(key, options.waitMs);
  try {
    const lease = await acquireWithin(key, options.waitMs, attempt, startedMs, retry);
    return await holdWhile(key, options.leaseMs, lease, work);
  } finally {
    leave();
  }
}

/** Several locks this process took in one backend operation (withLocks), as its backend sees them. */
export interface HeldLeases {
  /** The fencing token issued to each key taken (null for a lock that issues none). */
  fences: ReadonlyMap<string, number | null>;
  /** `performance.now()` after which every one of these leases must be presumed gone. */
  validUntilMs: number;
  /**
   * Renews the leases of `keys` in one operation. Resolves to the new `validUntilMs` of the keys in
   * `renewed`, and the keys whose lease is certainly gone (expired and taken, or deleted); a key in
   * neither (a Redlock quorum could not tell) keeps its old validity. Throws when the backend did not
   * answer at all: the holder keeps trying until the leases run out.
   */
  extend(
    keys: readonly string[],
  ): Promise<{ validUntilMs: number; renewed: readonly string[]; lost: readonly string[] }>;
  /** Gives back `keys` in one operation, each only if this holder still owns it (compare-and-delete). */
  release(keys: readonly string[]): Promise<void>;
}

/**
 * Runs `work` under several leases taken together: one renewal operation every `leaseMs / 3` for every
 * key still held, and one release operation for all of them once the work settles. Each key has its own
 * AbortSignal and validity: a key whose renewal says its lease is gone, or whose lease runs out before a
 * renewal gets through, is aborted with a LockLostError alone, and the work goes on with the others (the
 * store refuses to commit that key's part and commits the rest). `work`'s errors pass through
 * unchanged: it answers for each key on its own.
 */
export async function holdManyWhile<T>(
  leaseMs: number,
  leases: HeldLeases,
  refused: ReadonlyMap<string, Error>,
  work: ManyLockWork<T>,
): Promise<T> {
  const controllers = new Map<string, AbortController>();
  const granted = new Map<string, WriteGuard>();
  /** The keys whose lease has not been lost, with when each must be presumed gone. */
  const validUntil = new Map<string, number>();
  for (const [key, fence] of leases.fences) {
    const controller = new AbortController();
    controllers.set(key, controller);
    granted.set(key, { lockKey: key, fence, signal: controller.signal });
    validUntil.set(key, leases.validUntilMs);
  }
  let settled = false;
  let renewing: Promise<void> | null = null;
  let renewTimer: NodeJS.Timeout | undefined;
  let deadlineTimer: NodeJS.Timeout | undefined;

  const stopTimers = (): void => {
    clearTimeout(renewTimer);
    clearTimeout(deadlineTimer);
  };
  const lose = (keys: Iterable<string>): void => {
    for (const key of [...keys]) {
      if (!validUntil.delete(key)) continue;
      controllers.get(key)?.abort(new LockLostError(key));
    }
    if (validUntil.size === 0) stopTimers();
  };
  /** Aborts the keys whose lease ran out, and wakes up again when the next one would. */
  const armDeadline = (): void => {
    clearTimeout(deadlineTimer);
    const nowMs = performance.now();
    lose([...validUntil].filter(([, untilMs]) => untilMs <= nowMs).map(([key]) => key));
    if (validUntil.size === 0) return;
    deadlineTimer = setTimeout(armDeadline, Math.min(...validUntil.values()) - nowMs);
  };
  const renewEveryMs = Math.max(1, Math.floor(leaseMs / 3));
  const renew = async (): Promise<void> => {
    try {
      const answer = await leases.extend([...validUntil.keys()]);
      if (settled || validUntil.size === 0) return;
      lose(answer.lost);
      for (const key of answer.renewed) if (validUntil.has(key)) validUntil.set(key, answer.validUntilMs);
      armDeadline();
    } catch {
      // The backend did not answer: the leases may still stand. Try again; the deadline timer aborts
      // each key whose lease runs out before a renewal gets through.
    }
    if (!settled && validUntil.size > 0) scheduleRenewal();
  };
  const scheduleRenewal = (): void => {
    renewTimer = setTimeout(() => {
      renewing = renew();
    }, renewEveryMs);
  };

  if (validUntil.size > 0) {
    armDeadline();
    if (validUntil.size > 0) scheduleRenewal();
  }

  try {
    return await work(granted, refused);
  } finally {
    settled = true;
    stopTimers();
    await renewing;
    // A failed release is harmless: the leases run out by themselves, and nobody else's lock is touched.
    if (leases.fences.size > 0) await leases.release([...leases.fences.keys()]).catch(() => undefined);
  }
}

/** A fencing token floor that survives a lock server losing its counter: the wall clock in µs. */
export function wallClockMicros(): number {
  return Date.now() * 1000;
}
