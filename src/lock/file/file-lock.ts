/**
 * Locks across the processes of one host with no server: a small SQLite database (default
 * `<data dir>/locks.sqlite`) holding one row per lock key — owner, lease expiry and the last fencing
 * token issued. Each acquire, renewal and release is one short `BEGIN IMMEDIATE` transaction, which
 * SQLite serialises across processes with its own file locks.
 *
 * Durability: WAL with `synchronous = NORMAL`, so no fsync per acquisition. A crash of a process loses
 * nothing; a crash of the machine may lose the last few rows. Fences still never go backwards, because
 * each is at least the wall clock in microseconds: after a reboot the clock is past every fence issued
 * before it (the store would refuse every write forever if fences went back). Lease expiry is measured
 * on the host's monotonic clock, which all processes share and wall-clock steps do not move; it restarts
 * at boot, so rows left from an earlier boot are freed when the boot id changes.
 *
 * withLocks takes every free key of a list in one such transaction (each with its own fence), renews
 * them in one and releases them in one.
 *
 * Waiters learn of a release at once, across processes, through a signal file beside the database
 * (`<path>-released`): after a release commits, the releasing process writes one byte to it, and every
 * process watches it (fs.watch: inotify on Linux) and wakes its waiters (withLock's acquireWithin, the
 * sell path's retry of a busy event through onReleased). The signal names no key: every waiter tries
 * once more, which is one local read (~20 µs). It is a hint: a lost one costs a waiter its backoff
 * (capped at 10 ms). Written after the commit, so a woken waiter always sees the release; a signal on
 * the WAL file itself would come before the commit is visible. Numbers: docs/locks.md.
 *
 * Rows do not pile up: a key that is free and whose fence is more than `keyIdleMs` behind the wall clock
 * is deleted by a sweep that runs at start and after releases (at most every SWEEP_EVERY_MS). Its next
 * fence is the wall clock again, which is past the deleted one by the idle time: fences still grow.
 */
import {
  closeSync,
  constants,
  mkdirSync,
  openSync,
  readFileSync,
  watch,
  writeSync,
  type FSWatcher,
} from "node:fs";
import { dirname } from "node:path";
import os from "node:os";
import { randomUUID } from "node:crypto";
import type Database from "better-sqlite3";
import { openWal } from "../../sqlite/open-wal.js";
import type { WriteGuard } from "../../domain/write-guard.js";
import {
  holdManyWhile,
  withLease,
  wallClockMicros,
  type AcquireAttempt,
  type HeldLeases,
  type RetryOptions,
} from "../lease.js";
import { LockBusyError, LockUnavailableError } from "../../domain/lock-errors.js";
import {
  checkLockKeys,
  KEY_IDLE_MS,
  type LockOptions,
  type LockProvider,
  type ManyLockOptions,
  type ManyLockWork,
} from "../lock-provider.js";
import { LocalQueue } from "../local-queue.js";
import { ReleaseListeners } from "../release-listeners.js";
import { immediate } from "../../sqlite/immediate.js";

export interface FileLockOptions {
  /** Path of the lock database, e.g. `<data dir>/locks.sqlite`. */
  path: string;
  /**
   * How long one SQLite call may block this process waiting for another process's transaction. The
   * transactions are microseconds long, so this is only reached when a process stopped inside one.
   */
  busyTimeoutMs?: number;
  /** A free key whose last fence is older than this is forgotten (default KEY_IDLE_MS; tests shorten it). */
  keyIdleMs?: number;
  /**
   * Signal releases to the other processes and wake local waiters from theirs (default true). Off,
   * waiters only back off: the lost-notification case, for tests and A/B measurement.
   */
  releaseNotifications?: boolean;
  /** A waiter's first backoff after a busy answer (default 1 ms); tests lengthen it. */
  firstRetryMs?: number;
  /** The cap of a waiter's backoff between tries (default 10 ms); tests lengthen it. */
  maxRetryMs?: number;
}

/** What a release writes into the signal file: its content does not matter, the write does. */
const SIGNAL = Buffer.from("r");

/** The sweep of idle rows runs at most this often per process (or every half `keyIdleMs`, if shorter). */
const SWEEP_EVERY_MS = 60_000;

interface LockRow {
  owner: string | null;
  fence: number;
  expires_at: number;
}

/** The host's monotonic clock in ms: shared by every process on the host (CLOCK_MONOTONIC on Linux). */
function hostMonotonicMs(): number {
  return Number(process.hrtime.bigint() / 1_000_000n);
}

/** Changes at every boot, so leases measured on the monotonic clock of an earlier boot can be cleared. */
function bootId(): string {
  try {
    return readFileSync("/proc/sys/kernel/random/boot_id", "utf8").trim();
  } catch {
    // Not Linux: the boot time, to the minute, is stable enough within one boot.
    return `boot-${Math.round((Date.now() / 1000 - os.uptime()) / 60)}`;
  }
}

function isBusy(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  return code === "SQLITE_BUSY" || code === "SQLITE_LOCKED";
}

type Statements = ReturnType<typeof prepareStatements>;

/** The statements of the lock protocol, prepared once per connection. */
function prepareStatements(db: Database.Database) {
  return {
    select: db.prepare("SELECT owner, fence, expires_at FROM locks WHERE key = ?"),
    take: db.prepare(
      `INSERT INTO locks (key, owner, fence, expires_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, fence = excluded.fence,
         expires_at = excluded.expires_at`,
    ),
    // Only a lease that is still ours and still running may be renewed: an expired one may be taken.
    renew: db.prepare("UPDATE locks SET expires_at = ? WHERE key = ? AND owner = ? AND expires_at > ?"),
    // Compare-and-delete; the fence stays.
    release: db.prepare("UPDATE locks SET owner = NULL, expires_at = 0 WHERE key = ? AND owner = ?"),
    // Free (released or run out) and idle: the fence is far enough behind the clock that the wall-clock
    // floor of the next acquisition is past it. (The fence is at least the wall clock when it was issued.)
    sweep: db.prepare("DELETE FROM locks WHERE (owner IS NULL OR expires_at <= ?) AND fence < ?"),
  };
}

export class FileLock implements LockProvider {
  readonly kind = "file";
  readonly #path: string;
  readonly #busyTimeoutMs: number;
  readonly #keyIdleMs: number;
  #lastSweepMs = -Infinity;
  #db: Database.Database | null = null;
  #statements: Statements | null = null;
  #closed = false;
  readonly #queue = new LocalQueue();
  readonly #notify: boolean;
  readonly #listeners = new ReleaseListeners();
  readonly #retry: RetryOptions;
  /** The signal file's descriptor and watcher, while open with notifications. */
  #signalFd: number | null = null;
  #watcher: FSWatcher | null = null;

  constructor(options: FileLockOptions) {
    this.#path = options.path;
    this.#busyTimeoutMs = options.busyTimeoutMs ?? 250;
    this.#keyIdleMs = options.keyIdleMs ?? KEY_IDLE_MS;
    this.#notify = options.releaseNotifications ?? true;
    this.#retry = {
      firstRetryMs: options.firstRetryMs,
      maxRetryMs: options.maxRetryMs,
      onReleased: this.#notify ? (key, listener) => this.#listeners.add(key, listener) : undefined,
    };
  }

  async init(): Promise<void> {
    try {
      mkdirSync(dirname(this.#path), { recursive: true });
      const db = openWal(this.#path, {
        busyTimeoutMs: this.#busyTimeoutMs,
        synchronous: "NORMAL",
        setup: (fresh) => {
          fresh.exec(`
            CREATE TABLE IF NOT EXISTS locks (
              key TEXT PRIMARY KEY,
              owner TEXT,                    -- NULL when free; the fence stays: it must never go backwards
              fence INTEGER NOT NULL,
              expires_at INTEGER NOT NULL    -- host monotonic clock, ms
            );
            CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
          `);
          const boot = bootId();
          immediate(fresh, () => {
            const row = fresh.prepare("SELECT value FROM meta WHERE name = 'boot_id'").get() as
              { value: string } | undefined;
            if (row?.value === boot) return;
            // Every holder recorded here died with the previous boot, and its monotonic expiry means
            // nothing now.
            fresh.prepare("UPDATE locks SET owner = NULL, expires_at = 0").run();
            fresh.prepare("INSERT OR REPLACE INTO meta (name, value) VALUES ('boot_id', ?)").run(boot);
          });
        },
      });
      this.#statements = prepareStatements(db);
      this.#db = db;
      if (this.#notify) this.#watchSignal();
      this.#sweepIdle();
    } catch (error) {
      throw new LockUnavailableError(`lock database ${this.#path} cannot be opened`, error);
    }
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = null;
    if (this.#signalFd !== null) closeSync(this.#signalFd);
    this.#signalFd = null;
    this.#db?.close();
    this.#db = null;
    this.#statements = null;
    // Waiters try once more and meet "closed" (LockUnavailableError) instead of sleeping on.
    this.#listeners.notifyAll();
  }

  onReleased(key: string, listener: () => void): () => void {
    if (!this.#notify) return () => undefined;
    return this.#listeners.add(key, listener);
  }

  /**
   * Opens the signal file and watches it. Not persistent: the watcher does not keep the process alive.
   * A watcher that fails (the file removed) is dropped: waiters fall back to their backoff.
   */
  #watchSignal(): void {
    const signalPath = `${this.#path}-released`;
    this.#signalFd = openSync(signalPath, constants.O_RDWR | constants.O_CREAT, 0o644);
    const watcher = watch(signalPath, { persistent: false }, () => this.#listeners.notifyAll());
    watcher.on("error", () => {
      watcher.close();
      if (this.#watcher === watcher) this.#watcher = null;
    });
    this.#watcher = watcher;
  }

  /** Tells every process watching the signal file that a lock was released (after its commit). */
  #signalRelease(): void {
    if (this.#signalFd === null) return;
    try {
      writeSync(this.#signalFd, SIGNAL, 0, 1, 0);
    } catch {
      // A hint only: waiters fall back to their backoff.
    }
  }

  async ping(): Promise<void> {
    try {
      this.#open().db.prepare("SELECT 1").get();
    } catch (error) {
      throw new LockUnavailableError(`lock database ${this.#path} does not answer`, error);
    }
  }

  async withLock<T>(key: string, options: LockOptions, work: (guard: WriteGuard) => Promise<T>): Promise<T> {
    return withLease(
      this.#queue,
      key,
      options,
      async () => this.#tryAcquire(key, options.leaseMs),
      work,
      this.#retry,
    );
  }

  async withLocks<T>(keys: readonly string[], options: ManyLockOptions, work: ManyLockWork<T>): Promise<T> {
    checkLockKeys(keys);
    const { leases, refused } = this.#tryAcquireMany(keys, options.leaseMs);
    return holdManyWhile(options.leaseMs, leases, refused, work);
  }

  /** One try at every key in one transaction: the free ones are taken, the others refused as busy. */
  #tryAcquireMany(
    keys: readonly string[],
    leaseMs: number,
  ): { leases: HeldLeases; refused: Map<string, Error> } {
    const { db, statements } = this.#open();
    const owner = randomUUID();
    const startedMs = performance.now();
    const fences = new Map<string, number | null>();
    const refused = new Map<string, Error>();
    try {
      immediate(db, () => {
        const nowMs = hostMonotonicMs();
        for (const key of keys) {
          const row = statements.select.get(key) as LockRow | undefined;
          if (row !== undefined && row.owner !== null && row.expires_at > nowMs) continue;
          const next = Math.max((row?.fence ?? 0) + 1, wallClockMicros());
          statements.take.run(key, owner, next, nowMs + leaseMs);
          fences.set(key, next);
        }
      });
    } catch (error) {
      fences.clear();
      // Another process is stuck inside a transaction on the lock database: as good as busy.
      if (!isBusy(error)) throw new LockUnavailableError(`lock database ${this.#path} failed`, error);
    }
    for (const key of keys) if (!fences.has(key)) refused.set(key, new LockBusyError(key, 0));
    const leases: HeldLeases = {
      fences,
      // The rows' expiry was computed after startedMs, on the same host clock: this deadline is earlier.
      validUntilMs: startedMs + leaseMs,
      extend: async (held) => {
        const renewedAtMs = performance.now();
        const { db: open, statements: prepared } = this.#open();
        const renewed: string[] = [];
        const lost: string[] = [];
        immediate(open, () => {
          const nowMs = hostMonotonicMs();
          for (const key of held) {
            if (prepared.renew.run(nowMs + leaseMs, key, owner, nowMs).changes === 1) renewed.push(key);
            else lost.push(key);
          }
        });
        return { validUntilMs: renewedAtMs + leaseMs, renewed, lost };
      },
      release: async (held) => {
        const { db: open, statements: prepared } = this.#open();
        let released = 0;
        const releaseAll = (): void => {
          for (const key of held) released += prepared.release.run(key, owner).changes;
        };
        // One statement is its own transaction; several share one.
        if (held.length === 1) releaseAll();
        else immediate(open, releaseAll);
        if (released > 0) this.#signalRelease();
        this.#sweepIdle();
      },
    };
    return { leases, refused };
  }

  #open(): { db: Database.Database; statements: Statements } {
    if (this.#db === null || this.#statements === null) {
      throw new LockUnavailableError(this.#closed ? "file lock is closed" : "file lock is not initialised");
    }
    return { db: this.#db, statements: this.#statements };
  }

  #tryAcquire(key: string, leaseMs: number): AcquireAttempt {
    const { db, statements } = this.#open();
    const owner = randomUUID();
    const startedMs = performance.now();
    const isHeld = (row: LockRow | undefined, nowMs: number): boolean =>
      row !== undefined && row.owner !== null && row.expires_at > nowMs;
    let fence: number;
    try {
      // A plain read first: in WAL mode it takes no write lock, so waiters polling a held lock do not
      // queue up behind each other and behind the holder's renewals and release.
      if (isHeld(statements.select.get(key) as LockRow | undefined, hostMonotonicMs())) return "busy";
      const taken = immediate(db, (): number | null => {
        const nowMs = hostMonotonicMs();
        const row = statements.select.get(key) as LockRow | undefined;
        if (isHeld(row, nowMs)) return null;
        const next = Math.max((row?.fence ?? 0) + 1, wallClockMicros());
        statements.take.run(key, owner, next, nowMs + leaseMs);
        return next;
      });
      if (taken === null) return "busy";
      fence = taken;
    } catch (error) {
      // Another process is stuck inside a transaction on the lock database: as good as busy.
      if (isBusy(error)) return "busy";
      throw new LockUnavailableError(`lock database ${this.#path} failed`, error);
    }
    return {
      fence,
      // The row's expiry was computed after startedMs, on the same host clock: this deadline is earlier.
      validUntilMs: startedMs + leaseMs,
      extend: async () => {
        const renewedAtMs = performance.now();
        const nowMs = hostMonotonicMs();
        const changes = this.#open().statements.renew.run(nowMs + leaseMs, key, owner, nowMs).changes;
        return changes === 1 ? renewedAtMs + leaseMs : null;
      },
      release: async () => {
        if (this.#statements?.release.run(key, owner).changes === 1) this.#signalRelease();
        this.#sweepIdle();
      },
    };
  }

  /** Deletes the rows of free keys unused for `keyIdleMs`; at most every SWEEP_EVERY_MS. */
  #sweepIdle(): void {
    const nowMs = performance.now();
    if (nowMs - this.#lastSweepMs < Math.min(SWEEP_EVERY_MS, this.#keyIdleMs / 2)) return;
    this.#lastSweepMs = nowMs;
    try {
      this.#statements?.sweep.run(hostMonotonicMs(), wallClockMicros() - this.#keyIdleMs * 1000);
    } catch (error) {
      // Bookkeeping only: a busy database is swept next time.
      if (!isBusy(error)) throw new LockUnavailableError(`lock database ${this.#path} failed`, error);
    }
  }
}
