-- Issue #13, the sale: an event's currency and its price tiers (ticket types or price zones), fixed at
-- creation. What an admin may change later (name, window, limits, capacity, status) lives in the event's
-- sales database (event/002-sale.sql), where every selling transaction reads it.
ALTER TABLE events ADD COLUMN currency TEXT NOT NULL DEFAULT 'EUR' CHECK (length(currency) = 3);
-- JSON [PriceTier]; NULL for an event created before prices: one free default tier.
ALTER TABLE events ADD COLUMN tiers TEXT;
