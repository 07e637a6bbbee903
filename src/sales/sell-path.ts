/**
 * The sell path with group commit. Every write (order, hold, confirm, release, cancel) becomes a Command
 * queued for its event. When no batch runs for that event, one starts at once with everything queued (up
 * to `maxBatch`); while it runs, new commands wait for the next one. A batch takes the lock once and
 * commits once, so one fsync pays for many sales: the disk does a few thousand fsyncs a second, and one
 * commit per sale would cap a hot event there.
 *
 * With a store that commits synchronously (SQLite), the batch forms while the previous commit blocks the
 * event loop: the requests that arrive meanwhile are read together and start the next batch together.
 *
 * Each command's Outcome settles its own caller. A retryable error (lock busy, unavailable or lost,
 * store unavailable, fenced out) fails the whole batch: nothing of it was committed.
 *
 * With a store that can commit several events at once (Store.executeMany), the batches of different
 * events are committed together: one tick collects the pending work of every event that has no batch
 * running (up to `maxBatch` per event, `maxEventsPerTick` events), takes their locks in one operation
 * (LockProvider.withLocks; one lock for the whole tick in the global scope), and hands the granted ones
 * to the store in one call. A busy event's lock is not waited for while the others are held (two
 * instances doing that could deadlock or livelock): its work goes back to the front of its queue for a
 * later tick (after a short jittered backoff), and fails with LockBusyError only once `lockWaitMs` has
 * passed since its lock was first asked for. Where the lock provider tells of releases
 * (LockProvider.onReleased), a busy event is tried again as soon as its key is released, so the lock
 * passes between instances without idle milliseconds; the backoff is then only the fallback for a lost
 * notification. An event whose part the store refuses (fenced out, lease
 * lost) fails alone; the others commit. The tick starts at setImmediate like a batch, so a lone buyer
 * waits for nobody; while a tick is in the store, what arrives waits for the next one (as a hot event's
 * commands wait for its running batch), which carries every event's queued work.
 *
 * An event that does not exist is refused (`event_not_found`) before any lock is asked for, so that a
 * loop of made-up event ids leaves no lock or fence behind. Events that exist are remembered for the
 * life of the instance (events are never deleted); an unknown id is asked about again every time, since
 * another instance may be creating that event right now.
 */
import { BoxofficeError } from "../domain/errors.js";
import { isEventId } from "../domain/ids.js";
import { LockBusyError } from "../domain/lock-errors.js";
import { refusals } from "../domain/refusals.js";
import type { Command, Outcome } from "../domain/sale.js";
import type { LockProvider, LockScope } from "../lock/lock-provider.js";
import { lockKeyFor } from "../lock/lock-provider.js";
import type { WriteGuard } from "../domain/write-guard.js";
import type { EventBatch, EventBatchResult, Store } from "../store/store.js";

/** The queues are full: the request was refused before anything happened. */
export class SellPathOverloadedError extends BoxofficeError {
  constructor(message: string) {
    super("OVERLOADED", message, { retryable: true });
  }
}

/** The sell path is closing and takes no new work. */
export class SellPathClosedError extends BoxofficeError {
  constructor() {
    super("SHUTTING_DOWN", "this instance is shutting down", { retryable: true });
  }
}

/** What the sell path reports, so that the HTTP layer can expose it as metrics. */
export interface SellPathObserver {
  /** A batch of `size` commands is about to run. */
  batchStarted?(size: number): void;
  /** The lock was granted (or refused) after `waitMs`. */
  lockWaited?(waitMs: number): void;
  /** The queued command count changed. */
  queueDepthChanged?(depth: number): void;
}

/**
 * What the sell path tells a traced request about the batch that served it, so that the server can record
 * it as spans (telemetry/); times are `performance.now()` values. The store's batch includes its commit
 * (one transaction), so the two are one phase here.
 */
export interface SellTrace {
  batchRan(phases: BatchPhases): void;
}

export interface BatchPhases {
  /** When the request joined the queue, its batch asked for the lock, got it, and the store was done. */
  queuedAtMs: number;
  lockAskedAtMs: number;
  /** -1 when the lock was never granted. */
  lockGrantedAtMs: number;
  storeDoneAtMs: number;
  batchSize: number;
  /** The batch failed (lock or store unavailable): nothing of it was committed. */
  failed: boolean;
}

export interface SellPathOptions {
  store: Store;
  lock: LockProvider;
  lockScope: LockScope;
  /** The lease each batch asks the lock for. */
  lockLeaseMs: number;
  /** How long a batch waits for the lock before its commands fail with 503. */
  lockWaitMs: number;
  /** At most this many commands share one lock and one commit. */
  maxBatch: number;
  /**
   * With a store that has executeMany: at most this many events' batches share one tick (one store
   * call, one commit where the store can). Default 64.
   */
  maxEventsPerTick?: number;
  /** Admission control: commands waiting for one event beyond this are refused at once. */
  maxQueuePerEvent: number;
  /** Admission control: commands waiting in this instance beyond this are refused at once. */
  maxQueueTotal: number;
  observer?: SellPathObserver;
  /** A busy event's first backoff is up to 1 ms more than this (default 1 ms); tests lengthen it. */
  firstBusyRetryMs?: number;
  /** The cap of a busy event's backoff between tries (default 10 ms); tests lengthen it. */
  maxBusyRetryMs?: number;
  /** The clock; tests may pin it. */
  now?: () => Date;
}

interface Pending {
  command: Command;
  /** Only for a traced request. */
  trace: SellTrace | undefined;
  queuedAtMs: number;
  /** When a tick first asked for its lock (multi-event mode): its wait for a busy lock counts from here. */
  lockAskedAtMs: number | null;
  resolve: (outcome: Outcome) => void;
  reject: (error: unknown) => void;
}

interface EventQueue {
  pending: Pending[];
  /** The batch (or tick) that runs this event's commands now. */
  running: Promise<void> | null;
  /** Multi-event mode: after its lock was found busy, no tick takes this event before this time. */
  retryAtMs: number;
  /** Multi-event mode: how many ticks in a row found its lock busy (for the backoff). */
  busyTries: number;
  /**
   * Multi-event mode, once its lock was found busy: the subscription to its key's release notifications
   * (LockProvider.onReleased), kept while the event has work, so that a release between two ticks is
   * never missed; null before.
   */
  unwatch: (() => void) | null;
  /** A release of its key was heard since its last tick asked for the lock. */
  released: boolean;
}

/** One event's part of a tick. */
interface TickPart {
  eventId: string;
  queue: EventQueue;
  batch: Pending[];
  lockKey: string;
  grantedAtMs: number;
  /** Set once the part is settled: its outcomes, or why nothing of it was committed. */
  result: EventBatchResult | null;
}

const DEFAULT_MAX_EVENTS_PER_TICK = 64;
const MAX_TICKS_IN_FLIGHT = 1;
/** A busy event's work is tried again after about 1 ms, backing off (full jitter) up to this. */
const MAX_BUSY_RETRY_MS = 10;

/** The answer for every command of an event that does not exist: what the store answers for one. */
function eventNotFound(eventId: string): Outcome {
  return { ok: false, refusal: refusals.eventNotFound(eventId), replayed: false };
}

export class SellPath {
  readonly #options: SellPathOptions;
  /** Events known to exist. Bounded by the number of events: they are created by admins, never by buyers. */
  readonly #knownEvents = new Set<string>();
  /** Lookups in flight, shared by the requests for one id that arrive meanwhile. */
  readonly #lookups = new Map<string, Promise<boolean>>();
  readonly #now: () => Date;
  readonly #queues = new Map<string, EventQueue>();
  /** Per lock key, the promise that settles when the last batch queued for it here is done. */
  readonly #lockTails = new Map<string, Promise<void>>();
  #queued = 0;
  #closed = false;
  /** A tick is due at the next setImmediate (multi-event mode). */
  #tickScheduled = false;
  /** The tick running now (multi-event mode): at most MAX_TICKS_IN_FLIGHT. */
  readonly #ticks = new Set<Promise<void>>();
  /** Multi-event mode: the timer that starts a tick when the next busy event's backoff is over. */
  #retryTimer: { atMs: number; timer: NodeJS.Timeout; due: Promise<void>; fire: () => void } | null = null;

  constructor(options: SellPathOptions) {
    if (options.maxBatch < 1) throw new RangeError("maxBatch must be at least 1");
    if (options.maxEventsPerTick !== undefined && options.maxEventsPerTick < 1)
      throw new RangeError("maxEventsPerTick must be at least 1");
    this.#options = options;
    this.#now = options.now ?? (() => new Date());
  }

  /** Commands waiting (not yet in a running batch) across all events. */
  get queued(): number {
    return this.#queued;
  }

  /**
   * Runs `command` against `eventId` in the next batch for that event. Resolves with its Outcome (an
   * `event_not_found` refusal, without taking any lock, when the event does not exist); rejects with a
   * retryable BoxofficeError when nothing was committed (overloaded, lock or store unavailable), or with
   * whatever unexpected error the batch threw.
   */
  submit(eventId: string, command: Command, trace?: SellTrace): Promise<Outcome> {
    if (this.#closed) return Promise.reject(new SellPathClosedError());
    if (!isEventId(eventId)) return Promise.resolve(eventNotFound(eventId));
    // Known events go straight in (synchronously: what arrives together is batched together).
    if (this.#knownEvents.has(eventId)) return this.#enqueue(eventId, command, trace);
    return this.#exists(eventId).then((exists) =>
      exists ? this.#enqueue(eventId, command, trace) : eventNotFound(eventId),
    );
  }

  /** Whether the event exists; a store failure rejects (the caller answers 503). */
  #exists(eventId: string): Promise<boolean> {
    let lookup = this.#lookups.get(eventId);
    if (lookup === undefined) {
      lookup = this.#options.store.getEvent(eventId).then(
        (event) => {
          this.#lookups.delete(eventId);
          if (event !== null) this.#knownEvents.add(eventId);
          return event !== null;
        },
        (error: unknown) => {
          this.#lookups.delete(eventId);
          throw error;
        },
      );
      this.#lookups.set(eventId, lookup);
    }
    return lookup;
  }

  #enqueue(eventId: string, command: Command, trace: SellTrace | undefined): Promise<Outcome> {
    if (this.#closed) return Promise.reject(new SellPathClosedError());
    let queue = this.#queues.get(eventId);
    if (this.#queued >= this.#options.maxQueueTotal) {
      return Promise.reject(new SellPathOverloadedError(`${this.#queued} sales already queued here`));
    }
    if (queue && queue.pending.length >= this.#options.maxQueuePerEvent) {
      return Promise.reject(
        new SellPathOverloadedError(`${queue.pending.length} sales already queued for this event`),
      );
    }
    if (!queue) {
      queue = { pending: [], running: null, retryAtMs: 0, busyTries: 0, unwatch: null, released: false };
      this.#queues.set(eventId, queue);
    }
    const promise = new Promise<Outcome>((resolve, reject) => {
      queue.pending.push({
        command,
        trace,
        queuedAtMs: trace === undefined ? 0 : performance.now(),
        lockAskedAtMs: null,
        resolve,
        reject,
      });
    });
    this.#setQueued(this.#queued + 1);
    if (this.#options.store.executeMany !== undefined) {
      if (!queue.running) this.#scheduleTick();
      return promise;
    }
    // Start after the event loop's current I/O phase (setImmediate), not at once: every request whose
    // bytes already arrived is parsed by then and joins this batch. An embedded store commits
    // synchronously, so "new commands queue while a batch runs" alone would never batch with it.
    if (!queue.running) {
      queue.running = new Promise<void>((resolve) => setImmediate(resolve)).then(() =>
        this.#drain(eventId, queue),
      );
    }
    return promise;
  }

  /** Refuses new work and waits for every queued command to be answered. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await Promise.all([...this.#queues.values()].map((queue) => queue.running));
    // Multi-event mode: a tick that ends with work left schedules the next one, until none is left.
    while (this.#ticks.size > 0 || this.#tickScheduled || this.#retryTimer !== null) {
      await Promise.all(this.#ticks);
      if (this.#tickScheduled) await new Promise<void>((resolve) => setImmediate(resolve));
      else if (this.#ticks.size === 0 && this.#retryTimer !== null) {
        // A release notification may have served the work this timer was armed for: then nothing waits.
        if (this.#queued > 0) await this.#retryTimer.due;
        else {
          clearTimeout(this.#retryTimer.timer);
          this.#retryTimer.fire();
          this.#retryTimer = null;
        }
      }
    }
  }

  /**
   * Starts a tick after the event loop's current I/O phase (as a batch does): every request whose bytes
   * already arrived joins it.
   */
  #scheduleTick(): void {
    if (this.#tickScheduled) return;
    this.#tickScheduled = true;
    setImmediate(() => {
      this.#tickScheduled = false;
      this.#startTick();
    });
  }

  /** Starts a tick at `atMs` (a busy event's backoff is over), unless one is due sooner. */
  #scheduleRetry(atMs: number): void {
    if (this.#retryTimer !== null) {
      if (this.#retryTimer.atMs <= atMs) return;
      clearTimeout(this.#retryTimer.timer);
      this.#retryTimer.fire();
    }
    let fire = () => {};
    const due = new Promise<void>((resolve) => (fire = resolve));
    const retry = {
      atMs,
      due,
      fire,
      timer: setTimeout(
        () => {
          if (this.#retryTimer === retry) this.#retryTimer = null;
          fire();
          this.#scheduleTick();
        },
        Math.max(0, atMs - performance.now()),
      ),
    };
    this.#retryTimer = retry;
  }

  /** Takes the pending work of every event with no batch running (round robin past the cap) and runs it. */
  #startTick(): void {
    // While the store works on a tick (commit threads), what arrives queues for the next one: one tick in
    // flight gathers more per commit than many small ones would.
    if (this.#ticks.size >= MAX_TICKS_IN_FLIGHT) return;
    const maxEvents = this.#options.maxEventsPerTick ?? DEFAULT_MAX_EVENTS_PER_TICK;
    const parts: TickPart[] = [];
    const nowMs = performance.now();
    let nextRetryAtMs = Infinity;
    for (const [eventId, queue] of this.#queues) {
      if (parts.length >= maxEvents) break;
      if (queue.running || queue.pending.length === 0) continue;
      if (queue.retryAtMs > nowMs) {
        // Its lock was busy a moment ago: not before its backoff is over.
        nextRetryAtMs = Math.min(nextRetryAtMs, queue.retryAtMs);
        continue;
      }
      const batch = queue.pending.splice(0, this.#options.maxBatch);
      parts.push({
        eventId,
        queue,
        batch,
        lockKey: lockKeyFor(this.#options.lockScope, eventId),
        grantedAtMs: -1,
        result: null,
      });
    }
    if (nextRetryAtMs < Infinity) this.#scheduleRetry(nextRetryAtMs);
    if (parts.length === 0) return;
    let size = 0;
    for (const part of parts) {
      size += part.batch.length;
      // To the back of the line, so that events past the cap go first in the next tick.
      this.#queues.delete(part.eventId);
      this.#queues.set(part.eventId, part.queue);
    }
    this.#setQueued(this.#queued - size);
    const tick: Promise<void> = this.#runTick(parts, size).finally(() => {
      let more = false;
      for (const part of parts) {
        part.queue.running = null;
        if (part.queue.pending.length > 0) more = true;
        else if (this.#queues.get(part.eventId) === part.queue) this.#dropQueue(part.eventId, part.queue);
      }
      this.#ticks.delete(tick);
      if (more || this.#queued > 0) this.#scheduleTick();
    });
    for (const part of parts) part.queue.running = tick;
    this.#ticks.add(tick);
  }

  /**
   * Takes the parts' locks in one operation, runs the granted parts in one executeMany, answers their
   * buyers, and puts the parts whose lock was busy back at the front of their queues (or fails those
   * whose wait is over). Never rejects.
   */
  async #runTick(parts: TickPart[], size: number): Promise<void> {
    const { lock, lockScope, lockLeaseMs, lockWaitMs, observer } = this.#options;
    observer?.batchStarted?.(size);
    const askedAtMs = performance.now();
    const byKey = new Map<string, TickPart[]>();
    for (const part of parts) {
      part.queue.released = false;
      for (const entry of part.batch) entry.lockAskedAtMs ??= askedAtMs;
      const sharing = byKey.get(part.lockKey);
      if (sharing) sharing.push(part);
      else byKey.set(part.lockKey, [part]);
    }
    /** When the oldest work of `key`'s parts first asked for the lock. */
    const firstAskedAtMs = (key: string): number => {
      let first = askedAtMs;
      for (const part of byKey.get(key) ?? [])
        for (const entry of part.batch) first = Math.min(first, entry.lockAskedAtMs ?? askedAtMs);
      return first;
    };
    const grant = (key: string): void => {
      const grantedAtMs = performance.now();
      observer?.lockWaited?.(grantedAtMs - firstAskedAtMs(key));
      for (const part of byKey.get(key) ?? []) {
        part.grantedAtMs = grantedAtMs;
        part.queue.busyTries = 0;
      }
    };
    const busy: TickPart[] = [];
    try {
      if (lockScope === "global") {
        // One key for the whole tick: waiting for it holds nothing else.
        await this.#oneAtATime("global", () =>
          lock.withLock("global", { leaseMs: lockLeaseMs, waitMs: lockWaitMs }, async (guard) => {
            grant("global");
            await this.#commit(parts, new Map([["global", guard]]));
          }),
        );
      } else {
        const keys = [...byKey.keys()].sort();
        await lock.withLocks(
          keys,
          { leaseMs: lockLeaseMs, transactionWaitMs: lockWaitMs },
          async (granted, refused) => {
            for (const key of granted.keys()) grant(key);
            for (const [key, error] of refused) {
              for (const part of byKey.get(key) ?? []) {
                if (error instanceof LockBusyError) busy.push(part);
                else part.result = { ok: false, error };
              }
            }
            await this.#commit(
              parts.filter((part) => granted.has(part.lockKey)),
              granted,
            );
          },
        );
      }
    } catch (error) {
      for (const part of parts) if (!busy.includes(part)) part.result ??= { ok: false, error };
    }
    const storeDoneAtMs = performance.now();
    for (const part of busy) this.#putBack(part);
    for (const part of parts) if (!busy.includes(part)) this.#settle(part, askedAtMs, storeDoneAtMs);
  }

  /** Runs the granted parts of a tick in one executeMany and records each part's result. */
  async #commit(granted: TickPart[], guards: ReadonlyMap<string, WriteGuard>): Promise<void> {
    if (granted.length === 0) return;
    const { store } = this.#options;
    const batches: EventBatch[] = granted.map((part) => ({
      eventId: part.eventId,
      commands: part.batch.map((entry) => entry.command),
      guard: guards.get(part.lockKey) ?? null,
    }));
    const executeMany = store.executeMany as NonNullable<Store["executeMany"]>;
    const results = await executeMany.call(store, batches, this.#now());
    if (results.length !== granted.length) {
      throw new BoxofficeError(
        "STORE_CONTRACT",
        `store answered ${results.length} results for ${granted.length} events`,
      );
    }
    granted.forEach((part, i) => {
      part.result ??= results[i] as EventBatchResult;
    });
  }

  /**
   * A part whose lock was busy: the commands that have waited `lockWaitMs` since their lock was first
   * asked for fail with LockBusyError (503, Retry-After); the others go back to the front of their
   * event's queue, in order, for a tick after a short jittered backoff (full jitter, doubling up to
   * MAX_BUSY_RETRY_MS, never past the end of their wait), so that two instances do not knock in step.
   */
  #putBack(part: TickPart): void {
    const { lockWaitMs, observer } = this.#options;
    const nowMs = performance.now();
    const waitEndsAtMs = (entry: Pending): number => (entry.lockAskedAtMs ?? nowMs) + lockWaitMs;
    const expired = part.batch.filter((entry) => waitEndsAtMs(entry) <= nowMs);
    const waiting = part.batch.filter((entry) => waitEndsAtMs(entry) > nowMs);
    if (expired.length > 0) {
      observer?.lockWaited?.(lockWaitMs);
      const error = new LockBusyError(part.lockKey, lockWaitMs);
      for (const entry of expired) {
        entry.trace?.batchRan({
          queuedAtMs: entry.queuedAtMs,
          lockAskedAtMs: entry.lockAskedAtMs ?? nowMs,
          lockGrantedAtMs: -1,
          storeDoneAtMs: nowMs,
          batchSize: part.batch.length,
          failed: true,
        });
        entry.reject(error);
      }
    }
    if (waiting.length === 0) return;
    const queue = part.queue;
    queue.pending.unshift(...waiting);
    this.#setQueued(this.#queued + waiting.length);
    this.#watchReleases(part.lockKey, queue);
    if (queue.released) {
      // Released while this tick was asking: try again in the next tick, no backoff.
      queue.released = false;
      queue.retryAtMs = 0;
      return;
    }
    const { firstBusyRetryMs = 1, maxBusyRetryMs = MAX_BUSY_RETRY_MS } = this.#options;
    const backoffMs = 1 + Math.random() * Math.min(maxBusyRetryMs, firstBusyRetryMs * 2 ** queue.busyTries);
    queue.busyTries++;
    queue.retryAtMs = Math.min(nowMs + backoffMs, Math.min(...waiting.map(waitEndsAtMs)));
  }

  /**
   * Subscribes a busy event's queue to its key's release notifications (once; kept until the queue has
   * no work left): on a release its backoff ends at once and a tick is scheduled. The backoff timer stays
   * armed as the fallback for a notification that never comes.
   */
  #watchReleases(lockKey: string, queue: EventQueue): void {
    const { lock } = this.#options;
    if (queue.unwatch !== null || lock.onReleased === undefined) return;
    queue.unwatch = lock.onReleased(lockKey, () => {
      queue.released = true;
      if (queue.running !== null || queue.pending.length === 0) return;
      if (queue.retryAtMs > performance.now()) {
        queue.retryAtMs = 0;
        this.#scheduleTick();
      }
    });
  }

  /** Forgets an event's queue (it has no work left) and its release subscription. */
  #dropQueue(eventId: string, queue: EventQueue): void {
    this.#queues.delete(eventId);
    queue.unwatch?.();
    queue.unwatch = null;
  }

  /** Answers the buyers of one part of a tick. */
  #settle(part: TickPart, lockAskedAtMs: number, storeDoneAtMs: number): void {
    let result = part.result ?? {
      ok: false as const,
      error: new BoxofficeError("STORE_CONTRACT", `no result for event ${part.eventId}`),
    };
    if (result.ok && result.outcomes.length !== part.batch.length) {
      result = {
        ok: false,
        error: new BoxofficeError(
          "STORE_CONTRACT",
          `store answered ${result.outcomes.length} outcomes for ${part.batch.length} commands`,
        ),
      };
    }
    for (const entry of part.batch) {
      entry.trace?.batchRan({
        queuedAtMs: entry.queuedAtMs,
        lockAskedAtMs: entry.lockAskedAtMs ?? lockAskedAtMs,
        lockGrantedAtMs: part.grantedAtMs,
        storeDoneAtMs,
        batchSize: part.batch.length,
        failed: !result.ok,
      });
    }
    if (result.ok) {
      const outcomes = result.outcomes;
      part.batch.forEach((entry, i) => entry.resolve(outcomes[i] as Outcome));
    } else {
      for (const entry of part.batch) entry.reject(result.error);
    }
  }

  /** Runs batches for one event until its queue is empty. */
  async #drain(eventId: string, queue: EventQueue): Promise<void> {
    try {
      while (queue.pending.length > 0) {
        const batch = queue.pending.splice(0, this.#options.maxBatch);
        this.#setQueued(this.#queued - batch.length);
        await this.#runBatch(eventId, batch);
      }
    } finally {
      queue.running = null;
      this.#dropQueue(eventId, queue);
    }
  }

  async #runBatch(eventId: string, batch: Pending[]): Promise<void> {
    const { store, lock, lockScope, lockLeaseMs, lockWaitMs, observer } = this.#options;
    observer?.batchStarted?.(batch.length);
    const commands = batch.map((entry) => entry.command);
    const lockKey = lockKeyFor(lockScope, eventId);
    const askedAt = performance.now();
    let grantedAt = -1;
    let waited = false;
    const noteWait = () => {
      if (waited) return;
      waited = true;
      observer?.lockWaited?.(performance.now() - askedAt);
    };
    const traced = batch.some((entry) => entry.trace !== undefined);
    const tell = (failed: boolean) => {
      const storeDoneAtMs = performance.now();
      for (const entry of batch)
        entry.trace?.batchRan({
          queuedAtMs: entry.queuedAtMs,
          lockAskedAtMs: askedAt,
          lockGrantedAtMs: grantedAt,
          storeDoneAtMs,
          batchSize: batch.length,
          failed,
        });
    };
    try {
      const outcomes = await this.#oneAtATime(lockKey, () =>
        lock.withLock(lockKey, { leaseMs: lockLeaseMs, waitMs: lockWaitMs }, (guard) => {
          noteWait();
          if (traced) grantedAt = performance.now();
          return store.execute(eventId, commands, guard, this.#now());
        }),
      );
      if (outcomes.length !== batch.length) {
        throw new BoxofficeError(
          "STORE_CONTRACT",
          `store answered ${outcomes.length} outcomes for ${batch.length} commands`,
        );
      }
      if (traced) tell(false);
      batch.forEach((entry, i) => entry.resolve(outcomes[i] as Outcome));
    } catch (error) {
      noteWait();
      if (traced) tell(true);
      for (const entry of batch) entry.reject(error);
    }
  }

  /**
   * Runs batches that need the same lock key one after another inside this process, so that with the
   * global scope two events' batches here queue locally instead of contending for the distributed lock
   * (per event, batches of one event are already sequential and this changes nothing).
   */
  async #oneAtATime<T>(lockKey: string, work: () => Promise<T>): Promise<T> {
    const previous = this.#lockTails.get(lockKey);
    let release = () => {};
    const mine = new Promise<void>((resolve) => (release = resolve));
    const tail = previous ? previous.then(() => mine) : mine;
    this.#lockTails.set(lockKey, tail);
    try {
      await previous;
      return await work();
    } finally {
      release();
      if (this.#lockTails.get(lockKey) === tail) this.#lockTails.delete(lockKey);
    }
  }

  #setQueued(depth: number): void {
    this.#queued = depth;
    this.#options.observer?.queueDepthChanged?.(depth);
  }
}
