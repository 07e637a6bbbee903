-- Issue #13, the sale: status and sale window (judged by the database's clock in the selling
-- transaction), editable settings, currency, price tiers with their own counters, lines and totals.
ALTER TABLE events
  ADD COLUMN description text,
  ADD COLUMN status text NOT NULL DEFAULT 'published'
    CHECK (status IN ('draft', 'published', 'paused', 'closed')),
  ADD COLUMN sales_start_at timestamptz,
  ADD COLUMN sales_end_at timestamptz,
  ADD COLUMN confirm_holds_while_paused boolean NOT NULL DEFAULT true,
  ADD COLUMN max_hold_lifetime_seconds integer NOT NULL DEFAULT 3600 CHECK (max_hold_lifetime_seconds >= 1),
  ADD COLUMN currency text NOT NULL DEFAULT 'EUR' CHECK (currency ~ '^[A-Z]{3}$'),
  -- [PriceTier]; NULL for an event created before prices: one free default tier.
  ADD COLUMN tiers jsonb;

-- Sold and held tickets per ticket type or price zone. sold + held <= quota: the database, not the lock,
-- keeps a ticket type inside its quota (events_counters_valid keeps the sum inside capacity).
CREATE TABLE price_tiers (
  event_id text NOT NULL REFERENCES events (id),
  tier_id  text NOT NULL,
  quota    integer CHECK (quota IS NULL OR quota >= 0),
  sold     integer NOT NULL DEFAULT 0 CHECK (sold >= 0),
  held     integer NOT NULL DEFAULT 0 CHECK (held >= 0),
  CONSTRAINT price_tiers_within_quota CHECK (quota IS NULL OR sold + held <= quota),
  PRIMARY KEY (event_id, tier_id)
);
INSERT INTO price_tiers (event_id, tier_id, quota, sold, held)
  SELECT id, 'default', NULL, sold, held FROM events;

-- Lines ([Line]; NULL before prices: one free line of the default tier), totals in minor units.
ALTER TABLE orders
  ADD COLUMN lines jsonb,
  ADD COLUMN total bigint NOT NULL DEFAULT 0 CHECK (total >= 0),
  ADD COLUMN currency text NOT NULL DEFAULT 'EUR',
  ADD COLUMN payment_reference text;
ALTER TABLE holds
  ADD COLUMN lines jsonb,
  ADD COLUMN total bigint NOT NULL DEFAULT 0 CHECK (total >= 0),
  ADD COLUMN currency text NOT NULL DEFAULT 'EUR',
  ADD COLUMN created_at timestamptz;
UPDATE holds SET created_at = expires_at - interval '600 seconds';
