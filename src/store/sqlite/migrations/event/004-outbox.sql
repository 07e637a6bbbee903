-- The webhook outbox: one row per message (order.created, hold.expired, …), written in the same
-- transaction as the change it reports, so that a committed change always has its message and a
-- rolled-back one never does. The relay moves the rows to the webhook deliveries and deletes them here.
-- AUTOINCREMENT: a seq is never used twice, so deleting the rows a relay copied (by seq) can never
-- delete a newer row that took a freed number.
CREATE TABLE outbox (
  seq           INTEGER PRIMARY KEY AUTOINCREMENT,
  id            TEXT NOT NULL,         -- msg_<ulid>, the webhook-id header
  event_id      TEXT NOT NULL,
  type          TEXT NOT NULL,
  payload       TEXT NOT NULL,         -- the JSON body, exactly as signed and sent
  created_at_ms INTEGER NOT NULL
) STRICT;
