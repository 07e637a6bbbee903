-- Issue #13, the sale. What a selling transaction reads with the counters, in the same row, so that an
-- admin's pause or edit is seen by the next batch of every process: the status, the sale window (ms since
-- the epoch, judged by SQLite's own clock inside the transaction) and the settings an admin may edit.
-- NULL name, description, max_per_order, max_per_customer: as the catalog says (events made before).
ALTER TABLE inventory ADD COLUMN status TEXT NOT NULL DEFAULT 'published'
  CHECK (status IN ('draft', 'published', 'paused', 'closed'));
ALTER TABLE inventory ADD COLUMN sales_start_ms INTEGER;
ALTER TABLE inventory ADD COLUMN sales_end_ms INTEGER;
ALTER TABLE inventory ADD COLUMN name TEXT;
ALTER TABLE inventory ADD COLUMN description TEXT;
ALTER TABLE inventory ADD COLUMN max_per_order INTEGER CHECK (max_per_order >= 1);
ALTER TABLE inventory ADD COLUMN max_per_customer INTEGER CHECK (max_per_customer >= 1);
ALTER TABLE inventory ADD COLUMN confirm_holds_while_paused INTEGER NOT NULL DEFAULT 1
  CHECK (confirm_holds_while_paused IN (0, 1));
ALTER TABLE inventory ADD COLUMN max_hold_lifetime_seconds INTEGER NOT NULL DEFAULT 3600
  CHECK (max_hold_lifetime_seconds >= 1);

-- Sold and held tickets per ticket type or price zone. sold + held <= quota: the database, not the lock,
-- is what keeps a ticket type inside its quota (the event's own CHECK keeps the sum inside capacity).
CREATE TABLE price_tiers (
  event_id TEXT NOT NULL,
  tier_id  TEXT NOT NULL,
  quota    INTEGER CHECK (quota IS NULL OR quota >= 0),
  sold     INTEGER NOT NULL DEFAULT 0 CHECK (sold >= 0),
  held     INTEGER NOT NULL DEFAULT 0 CHECK (held >= 0),
  CHECK (quota IS NULL OR sold + held <= quota),
  PRIMARY KEY (event_id, tier_id)
) STRICT, WITHOUT ROWID;
-- Events made before prices: everything is in their one default tier.
INSERT INTO price_tiers (event_id, tier_id, quota, sold, held)
  SELECT event_id, 'default', NULL, sold, held FROM inventory;

-- Lines (JSON [Line]; NULL before prices: one free line of the default tier), totals in minor units.
ALTER TABLE orders ADD COLUMN lines TEXT;
ALTER TABLE orders ADD COLUMN total INTEGER NOT NULL DEFAULT 0 CHECK (total >= 0);
ALTER TABLE orders ADD COLUMN currency TEXT NOT NULL DEFAULT 'EUR';
ALTER TABLE orders ADD COLUMN payment_reference TEXT;
ALTER TABLE holds ADD COLUMN lines TEXT;
ALTER TABLE holds ADD COLUMN total INTEGER NOT NULL DEFAULT 0 CHECK (total >= 0);
ALTER TABLE holds ADD COLUMN currency TEXT NOT NULL DEFAULT 'EUR';
-- When the hold was taken (its lifetime bound); holds made before: their expiry less the default TTL.
ALTER TABLE holds ADD COLUMN created_at_ms INTEGER;
UPDATE holds SET created_at_ms = expires_at_ms - 600000;
