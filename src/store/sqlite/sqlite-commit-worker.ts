/**
 * A commit thread of the per-event SQLite layout (sqlite-commit-threads.ts starts them). It owns its own
 * connections to the event files of its shard and to the catalog (for the hints), and applies each part
 * it is sent exactly as SqliteStore.execute() does in the main thread: one IMMEDIATE transaction of the
 * event's file, the fence checked in it, overdue holds expired first, the hold-deadline and outbox hints
 * lowered under the file's write lock before the commit, and no commit once the lease is lost (the main
 * thread sets the part's shared abort flag when the guard's signal aborts).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { parentPort, workerData } from "node:worker_threads";
import type { EventPlan } from "../../domain/event.js";
import type { WriteGuard } from "../../domain/write-guard.js";
import type { SqliteDatabase } from "../../sqlite/open-wal.js";
import { openWal } from "../../sqlite/open-wal.js";
import { StoreUnavailableError } from "../store-errors.js";
import { mapSqliteError, openSqlite } from "./sqlite-database.js";
import type { HintStatements } from "./sqlite-hints.js";
import { HINT_BUSY_TIMEOUT_MS, prepareHints } from "./sqlite-hints.js";
import { SqliteSales } from "./sqlite-sales.js";
import type {
  CommitReply,
  CommitRequest,
  CommitThreadConfig,
  WireBookkeeping,
  WireError,
  WireResult,
} from "./sqlite-commit-threads.js";

const config = workerData as CommitThreadConfig;
const port = parentPort;
if (port === null) throw new Error("sqlite-commit-worker.js runs as a worker thread only");

/** The plan last sent for each event (a part sent without one uses it), until a request forgets them. */
const plans = new Map<string, EventPlan>();
/** This thread's open event files, least recently used first. */
const open = new Map<string, { db: SqliteDatabase; sales: SqliteSales }>();
let hintsDb: SqliteDatabase | null = null;
let hints: HintStatements | null = null;
/** Bookkeeping of the request being answered, sent back with it. */
let bookkeeping: WireBookkeeping[] = [];
/** When a hint write of this thread last failed: a seller does not wait for a busy catalog twice. */
let failedAtMs = Number.NEGATIVE_INFINITY;

function toWire(error: unknown): WireError {
  const mapped = mapSqliteError(error, "sell");
  const { code, retryable } = (mapped ?? {}) as { code?: unknown; retryable?: unknown };
  return {
    name: mapped instanceof Error ? mapped.name : "Error",
    message: mapped instanceof Error ? mapped.message : String(mapped),
    code: typeof code === "string" ? code : null,
    retryable: retryable === true,
  };
}

function hintStatements(): HintStatements {
  if (hints === null) {
    const path = join(config.dir, "catalog.db");
    hintsDb = openWal(path, {
      busyTimeoutMs: HINT_BUSY_TIMEOUT_MS,
      synchronous: config.durability === "full" ? "FULL" : "NORMAL",
      setup: () => undefined,
    });
    hints = prepareHints(hintsDb);
  }
  return hints;
}

/** As SqliteStore's #lowerHint: earlier, never later; a failure is reported and retried by the main thread. */
function lowerHint(eventId: string, earliestMs: number): void {
  try {
    const statements = hintStatements();
    const current = statements.get.get(eventId);
    if (current && current.earliest_ms <= earliestMs) return;
    statements.lower.run({ eventId, earliestMs });
  } catch (error) {
    failedAtMs = Date.now();
    bookkeeping.push({
      kind: "hold",
      eventId,
      earliestMs,
      error: toWire(error),
      what: `write the hold-deadline hint of ${eventId}`,
    });
  }
}

/** As SqliteStore's #lowerOutboxHint for a seller: under the file's write lock, before the commit. */
function lowerOutboxHint(eventId: string): void {
  const what = `write the outbox hint of ${eventId}`;
  if (Date.now() - failedAtMs < HINT_BUSY_TIMEOUT_MS) {
    bookkeeping.push({ kind: "outbox", eventId, earliestMs: 0, error: null, what });
    return;
  }
  try {
    const dueMs = Date.now();
    const statements = hintStatements().outbox;
    const current = statements.get.get(eventId);
    if (current && current.due_ms <= dueMs) return;
    statements.lower.run({ eventId, dueMs });
  } catch (error) {
    failedAtMs = Date.now();
    bookkeeping.push({ kind: "outbox", eventId, earliestMs: 0, error: toWire(error), what });
  }
}

function partition(eventId: string): { db: SqliteDatabase; sales: SqliteSales } {
  const found = open.get(eventId);
  if (found) {
    open.delete(eventId);
    open.set(eventId, found);
    return found;
  }
  const path = join(config.dir, "events", `${eventId}.db`);
  if (!existsSync(path)) throw new StoreUnavailableError(`event file ${path} is missing`);
  const db = openSqlite(path, ["event"], config.durability, config.migrations);
  const opened = { db, sales: new SqliteSales(db, { onOutbox: lowerOutboxHint }) };
  open.set(eventId, opened);
  while (open.size > config.maxOpenEvents) {
    const [oldestId, oldest] = open.entries().next().value as [string, typeof opened];
    open.delete(oldestId);
    oldest.db.close();
  }
  return opened;
}

function run(request: CommitRequest): CommitReply {
  bookkeeping = [];
  if (request.forgetPlans) plans.clear();
  // Before anything can throw: the sender counts every plan it sent as kept.
  for (const part of request.parts) if (part.plan !== null) plans.set(part.eventId, part.plan);
  const now = new Date(request.nowMs);
  const results = request.parts.map((part): WireResult => {
    try {
      const aborted = part.aborted;
      const flags = aborted === null ? null : new Int32Array(aborted.flags);
      // Only `aborted` of the signal is read by the store, right before its writes and its commit.
      const signal = {
        get aborted() {
          return flags !== null && aborted !== null && Atomics.load(flags, aborted.index) === 1;
        },
      };
      const guard: WriteGuard | null =
        part.guard === null ? null : { ...part.guard, signal: signal as AbortSignal };
      const plan = part.plan ?? plans.get(part.eventId);
      if (plan === undefined) throw new StoreUnavailableError(`commit thread has no plan of ${part.eventId}`);
      const { sales } = partition(part.eventId);
      const hintMs = part.hintMs;
      const outcomes =
        hintMs === null
          ? sales.execute(plan, part.commands, guard, now)
          : sales.execute(plan, part.commands, guard, now, () => lowerHint(part.eventId, hintMs));
      return { ok: true, outcomes };
    } catch (error) {
      return { ok: false, error: toWire(error) };
    }
  });
  return { id: request.id, results, bookkeeping };
}

port.on("message", (message: CommitRequest | "close") => {
  if (message === "close") {
    for (const { db } of open.values()) db.close();
    open.clear();
    hintsDb?.close();
    port.close();
    return;
  }
  port.postMessage(run(message));
});
