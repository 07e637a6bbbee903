-- The first schema of the PostgreSQL store. Runs inside one transaction with search_path set to the
-- store's schema, so names here are unqualified.
--
-- Every guarantee below is a constraint or a guarded statement, not a lock: the store also takes the
-- event row FOR NO KEY UPDATE first (so writers of one event never deadlock), but a writer that skipped
-- that would still be stopped here.

CREATE TABLE events (
  -- Ids sort by creation time (src/domain/ids.ts): the event list pages through this key.
  id               text COLLATE "C" PRIMARY KEY,
  name             text NOT NULL,
  kind             text NOT NULL CHECK (kind IN ('general', 'seated')),
  capacity         integer NOT NULL CHECK (capacity BETWEEN 1 AND 1000000),
  sold             integer NOT NULL DEFAULT 0,
  held             integer NOT NULL DEFAULT 0,
  -- Seated events only: [{ name, rows, seatsPerRow }]; seats are derived, not stored one row each.
  sections         jsonb,
  max_per_order    integer NOT NULL CHECK (max_per_order >= 1),
  max_per_customer integer NOT NULL CHECK (max_per_customer >= 1),
  starts_at        timestamptz,
  created_at       timestamptz NOT NULL,
  -- sold + held <= capacity, neither negative: the last word against overselling, whatever the lock did.
  CONSTRAINT events_counters_valid CHECK (sold >= 0 AND held >= 0 AND sold + held <= capacity),
  CONSTRAINT events_sections_match_kind CHECK ((kind = 'seated') = (sections IS NOT NULL))
);

CREATE TABLE orders (
  id           text PRIMARY KEY,
  event_id     text NOT NULL REFERENCES events (id),
  customer_id  text NOT NULL,
  quantity     integer NOT NULL CHECK (quantity >= 1),
  seats        text[],
  status       text NOT NULL CHECK (status IN ('confirmed', 'cancelled')),
  created_at   timestamptz NOT NULL,
  cancelled_at timestamptz,
  CONSTRAINT orders_cancelled_at_matches_status CHECK ((status = 'cancelled') = (cancelled_at IS NOT NULL))
);
CREATE INDEX orders_event ON orders (event_id);

CREATE TABLE holds (
  id          text PRIMARY KEY,
  event_id    text NOT NULL REFERENCES events (id),
  customer_id text NOT NULL,
  quantity    integer NOT NULL CHECK (quantity >= 1),
  seats       text[],
  status      text NOT NULL CHECK (status IN ('active', 'confirmed', 'released', 'expired')),
  expires_at  timestamptz NOT NULL
);
-- The sweeper's and execute()'s search for overdue holds reads only active ones.
CREATE INDEX holds_active_due ON holds (expires_at) WHERE status = 'active';
CREATE INDEX holds_event_active_due ON holds (event_id, expires_at) WHERE status = 'active';

-- One row per seat that is held or sold; a free seat has no row. The primary key is the guarantee that
-- a seat is in at most one active hold or confirmed order.
CREATE TABLE seat_claims (
  event_id text NOT NULL REFERENCES events (id),
  seat_id  text NOT NULL,
  -- The hold or order that has the seat.
  owner_id text NOT NULL,
  sold     boolean NOT NULL,
  PRIMARY KEY (event_id, seat_id)
);
CREATE INDEX seat_claims_owner ON seat_claims (event_id, owner_id);

-- Tickets a customer has in active holds plus confirmed orders, per event: what maxPerCustomer counts.
CREATE TABLE customer_tickets (
  event_id    text NOT NULL REFERENCES events (id),
  customer_id text NOT NULL,
  tickets     integer NOT NULL CHECK (tickets >= 0),
  PRIMARY KEY (event_id, customer_id)
);

-- The first answer to each idempotency key, scoped per event. The primary key is the guarantee that a
-- key is answered once: a second transaction with the same key waits for the first and then fails.
CREATE TABLE idempotency (
  event_id    text NOT NULL REFERENCES events (id),
  key         text NOT NULL,
  fingerprint text NOT NULL,
  outcome     jsonb NOT NULL,
  created_at  timestamptz NOT NULL,
  PRIMARY KEY (event_id, key)
);
CREATE INDEX idempotency_created ON idempotency (created_at);

-- The highest fencing token applied per lock key: a write with an older one is refused.
CREATE TABLE fences (
  lock_key text PRIMARY KEY,
  fence    bigint NOT NULL
);
