-- Webhook endpoints, the messages moved out of the event files' outboxes, and one delivery per message
-- and subscribed endpoint. In the per-event layout this is webhooks.db (apart from the catalog, so the
-- relay's writes never keep a seller waiting for the catalog's lock); in the single layout, boxoffice.db.

CREATE TABLE webhook_endpoints (
  id          TEXT PRIMARY KEY,        -- whe_<ulid>
  url         TEXT NOT NULL,
  event_types TEXT NOT NULL,           -- JSON array of types; [] means every type
  enabled     INTEGER NOT NULL CHECK (enabled IN (0, 1)),
  secret      TEXT NOT NULL,           -- whsec_<base64>: the relay signs with it
  created_at  TEXT NOT NULL
) STRICT;

CREATE TABLE webhook_messages (
  id            TEXT PRIMARY KEY,      -- msg_<ulid>: a message copied twice is stored once
  event_id      TEXT NOT NULL,
  type          TEXT NOT NULL,
  payload       TEXT NOT NULL,
  created_at_ms INTEGER NOT NULL
) STRICT;

-- One message to one endpoint. UNIQUE (message_id, endpoint_id): a message dispatched twice (two relays,
-- or a relay that died between copying and deleting) makes one delivery. A claim is a guarded UPDATE:
-- only a pending row whose lease has run out can be leased, and only the lease's owner, for the attempt
-- it claimed, can record the result.
CREATE TABLE webhook_deliveries (
  id              TEXT PRIMARY KEY,    -- dlv_<ulid>
  message_id      TEXT NOT NULL,
  endpoint_id     TEXT NOT NULL,
  status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts        INTEGER NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_ms INTEGER NOT NULL,
  lease_owner     TEXT,
  lease_until_ms  INTEGER,
  last_status     INTEGER,
  last_error      TEXT,
  retry_from_ms   INTEGER NOT NULL,    -- the retry window (24 h by default) counts from here
  created_at_ms   INTEGER NOT NULL,
  delivered_at_ms INTEGER,
  UNIQUE (message_id, endpoint_id)
) STRICT;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_ms) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_by_status ON webhook_deliveries (status, id);
