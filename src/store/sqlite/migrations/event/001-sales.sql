-- The sales of events: counters, seat claims, orders, holds, idempotency records and fences. In the
-- per-event layout each event has a file of its own with only its rows; in the single layout all events
-- share one file. Every table is keyed by event_id so the two layouts use the same statements.

-- sold + held <= capacity: the database, not the lock, is what forbids overselling.
CREATE TABLE inventory (
  event_id TEXT PRIMARY KEY,
  capacity INTEGER NOT NULL CHECK (capacity >= 1),
  sold     INTEGER NOT NULL DEFAULT 0 CHECK (sold >= 0),
  held     INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
  CHECK (sold + held <= capacity)
) STRICT;

-- A row per seat that is in an active hold or a confirmed order. The primary key is what forbids selling
-- a seat twice: a second claim on the same seat cannot be inserted.
CREATE TABLE seat_claims (
  event_id   TEXT NOT NULL,
  seat_id    TEXT NOT NULL,
  owner_id   TEXT NOT NULL,
  owner_kind TEXT NOT NULL CHECK (owner_kind IN ('hold', 'order')),
  PRIMARY KEY (event_id, seat_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX seat_claims_owner ON seat_claims (owner_id);

-- Tickets per customer in active holds and confirmed orders; guarded against maxPerCustomer on write.
CREATE TABLE customer_tickets (
  event_id    TEXT NOT NULL,
  customer_id TEXT NOT NULL,
  tickets     INTEGER NOT NULL CHECK (tickets >= 0),
  PRIMARY KEY (event_id, customer_id)
) STRICT, WITHOUT ROWID;

CREATE TABLE orders (
  id           TEXT PRIMARY KEY,
  event_id     TEXT NOT NULL,
  customer_id  TEXT NOT NULL,
  quantity     INTEGER NOT NULL CHECK (quantity >= 1),
  seats        TEXT,                   -- JSON array of seat ids, or NULL for general admission
  status       TEXT NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
  created_at   TEXT NOT NULL,
  cancelled_at TEXT,
  hold_id      TEXT UNIQUE             -- a hold becomes at most one order
) STRICT;

CREATE TABLE holds (
  id            TEXT PRIMARY KEY,
  event_id      TEXT NOT NULL,
  customer_id   TEXT NOT NULL,
  quantity      INTEGER NOT NULL CHECK (quantity >= 1),
  seats         TEXT,
  status        TEXT NOT NULL CHECK (status IN ('active', 'confirmed', 'released', 'expired')),
  expires_at_ms INTEGER NOT NULL
) STRICT;
CREATE INDEX holds_active_by_expiry ON holds (event_id, expires_at_ms) WHERE status = 'active';

-- The first answer given for an idempotency key, replayed for a repeat with the same fingerprint.
-- The primary key is what forbids using one key for two sales.
CREATE TABLE idempotency (
  event_id      TEXT NOT NULL,
  key           TEXT NOT NULL,
  fingerprint   TEXT NOT NULL,
  outcome       TEXT NOT NULL,         -- JSON of the Outcome
  created_at_ms INTEGER NOT NULL,
  PRIMARY KEY (event_id, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX idempotency_by_age ON idempotency (created_at_ms);

-- The highest fencing token applied per lock key; an older one is refused.
CREATE TABLE fences (
  lock_key TEXT PRIMARY KEY,
  fence    INTEGER NOT NULL
) STRICT;
