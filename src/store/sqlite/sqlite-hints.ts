/**
 * The catalog's hints of the per-event SQLite layout (hold_deadlines, outbox_hints): which event files a
 * sweep or a dispatch must open. SqliteStore keeps them (see its #expirePerEvent and #dispatchOutbox for
 * the invariants); the commit threads (sqlite-commit-worker.ts) lower them the same way from their own
 * catalog connection.
 */
import type { Statement } from "better-sqlite3";
import type { Command } from "../../domain/sale.js";
import type { SqliteDatabase } from "../../sqlite/open-wal.js";

/**
 * How long a hint write waits for the catalog's write lock. The seller waits while it holds its event
 * file's write lock, so this is short: a hint that cannot be written is written at the next sweep.
 */
export const HINT_BUSY_TIMEOUT_MS = 100;
export interface HintStatements {
  get: Statement<[string], { earliest_ms: number }>;
  lower: Statement<[{ eventId: string; earliestMs: number }]>;
  set: Statement<[{ eventId: string; earliestMs: number }]>;
  drop: Statement<[string]>;
  due: Statement<[number, number], { event_id: string; earliest_ms: number }>;
  claim: Statement<[{ eventId: string; seenMs: number; retryMs: number }]>;
  outbox: {
    get: Statement<[string], { due_ms: number }>;
    lower: Statement<[{ eventId: string; dueMs: number }]>;
    set: Statement<[{ eventId: string; dueMs: number }]>;
    drop: Statement<[string]>;
    due: Statement<[number, number], { event_id: string; due_ms: number }>;
    claim: Statement<[{ eventId: string; seenMs: number; retryMs: number }]>;
  };
}

/** The earliest expiry a hold in this batch can get, or null when the batch creates no hold. */
export function earliestHoldExpiry(commands: readonly Command[], now: Date): number | null {
  let earliest: number | null = null;
  for (const command of commands) {
    if (command.type !== "hold") continue;
    // The same arithmetic as the hold's own expiry (SqliteSales), so the hint is never later.
    const expiresAtMs = now.getTime() + command.ttlSeconds * 1000;
    if (earliest === null || expiresAtMs < earliest) earliest = expiresAtMs;
  }
  return earliest;
}

export function prepareHints(db: SqliteDatabase): HintStatements {
  return {
    get: db.prepare("SELECT earliest_ms FROM hold_deadlines WHERE event_id = ?"),
    lower: db.prepare(
      `INSERT INTO hold_deadlines (event_id, earliest_ms) VALUES (@eventId, @earliestMs)
       ON CONFLICT (event_id) DO UPDATE SET earliest_ms = min(earliest_ms, excluded.earliest_ms)`,
    ),
    set: db.prepare(
      `INSERT INTO hold_deadlines (event_id, earliest_ms) VALUES (@eventId, @earliestMs)
       ON CONFLICT (event_id) DO UPDATE SET earliest_ms = excluded.earliest_ms`,
    ),
    drop: db.prepare("DELETE FROM hold_deadlines WHERE event_id = ?"),
    due: db.prepare(
      "SELECT event_id, earliest_ms FROM hold_deadlines WHERE earliest_ms <= ? ORDER BY earliest_ms LIMIT CAST(? AS INTEGER)",
    ),
    claim: db.prepare(
      "UPDATE hold_deadlines SET earliest_ms = @retryMs WHERE event_id = @eventId AND earliest_ms = @seenMs",
    ),
    outbox: {
      get: db.prepare("SELECT due_ms FROM outbox_hints WHERE event_id = ?"),
      lower: db.prepare(
        `INSERT INTO outbox_hints (event_id, due_ms) VALUES (@eventId, @dueMs)
         ON CONFLICT (event_id) DO UPDATE SET due_ms = min(due_ms, excluded.due_ms)`,
      ),
      set: db.prepare(
        `INSERT INTO outbox_hints (event_id, due_ms) VALUES (@eventId, @dueMs)
         ON CONFLICT (event_id) DO UPDATE SET due_ms = excluded.due_ms`,
      ),
      drop: db.prepare("DELETE FROM outbox_hints WHERE event_id = ?"),
      due: db.prepare(
        "SELECT event_id, due_ms FROM outbox_hints WHERE due_ms <= ? ORDER BY due_ms LIMIT CAST(? AS INTEGER)",
      ),
      claim: db.prepare(
        "UPDATE outbox_hints SET due_ms = @retryMs WHERE event_id = @eventId AND due_ms = @seenMs",
      ),
    },
  };
}
