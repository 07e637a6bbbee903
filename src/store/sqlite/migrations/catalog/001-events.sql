-- The catalog: one row per event with what never changes after creation. In the single-file layout it
-- lives in the same database as the sales; in the per-event layout it is catalog.db.
CREATE TABLE events (
  id               TEXT PRIMARY KEY,
  name             TEXT NOT NULL,
  kind             TEXT NOT NULL CHECK (kind IN ('general', 'seated')),
  capacity         INTEGER NOT NULL CHECK (capacity BETWEEN 1 AND 1000000),
  sections         TEXT,               -- JSON [{name, rows, seatsPerRow}] for seated events
  max_per_order    INTEGER NOT NULL CHECK (max_per_order >= 1),
  max_per_customer INTEGER NOT NULL CHECK (max_per_customer >= 1),
  starts_at        TEXT,
  created_at       TEXT NOT NULL
) STRICT;

-- Per-event layout only: the earliest expiry of any active hold per event file, so that the hold sweeper
-- opens only the files that have something to expire instead of all of them.
CREATE TABLE hold_deadlines (
  event_id    TEXT PRIMARY KEY,
  earliest_ms INTEGER NOT NULL
) STRICT;
