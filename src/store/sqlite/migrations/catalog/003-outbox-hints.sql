-- Per-event layout only: which event files have outbox rows not yet moved to the webhook deliveries, so
-- that the relay opens only those instead of every file. A row is due at due_ms; a relay claims it by
-- pushing due_ms ahead, and removes it only under the event file's write lock once the file's outbox is
-- empty (the same scheme as hold_deadlines; see SqliteStore).
CREATE TABLE outbox_hints (
  event_id TEXT PRIMARY KEY,
  due_ms   INTEGER NOT NULL
) STRICT;
