-- Webhooks by a transactional outbox. The sell path inserts one outbox row per message in the same
-- transaction as the change it reports (closeBatch, the hold expiry); the relay moves the rows to
-- webhook_messages and makes one delivery per subscribed endpoint, deleting them from the outbox in the
-- same transaction. Payloads are text, not jsonb: the bytes stored are the bytes signed and sent.

CREATE TABLE outbox (
  seq        bigserial PRIMARY KEY,
  id         text NOT NULL,           -- msg_<ulid>, the webhook-id header
  event_id   text NOT NULL,
  type       text NOT NULL,
  payload    text NOT NULL,
  created_at timestamptz NOT NULL
);

CREATE TABLE webhook_endpoints (
  id          text COLLATE "C" PRIMARY KEY,   -- whe_<ulid>: the list pages through this key
  url         text NOT NULL,
  event_types text[] NOT NULL,                -- empty: every type
  enabled     boolean NOT NULL,
  secret      text NOT NULL,                  -- whsec_<base64>
  created_at  timestamptz NOT NULL
);

CREATE TABLE webhook_messages (
  id         text PRIMARY KEY,
  event_id   text NOT NULL,
  type       text NOT NULL,
  payload    text NOT NULL,
  created_at timestamptz NOT NULL
);

-- One message to one endpoint; UNIQUE (message_id, endpoint_id) makes a message dispatched twice one
-- delivery. A claim is FOR UPDATE SKIP LOCKED on due pending rows with no live lease; only the lease's
-- owner, for the attempt it claimed, records the result.
CREATE TABLE webhook_deliveries (
  id              text COLLATE "C" PRIMARY KEY, -- dlv_<ulid>: pages go newest first by this key
  message_id      text NOT NULL REFERENCES webhook_messages (id),
  endpoint_id     text NOT NULL REFERENCES webhook_endpoints (id) ON DELETE CASCADE,
  status          text NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
  attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
  next_attempt_at timestamptz NOT NULL,
  lease_owner     text,
  lease_until     timestamptz,
  last_status     integer,
  last_error      text,
  retry_from      timestamptz NOT NULL,         -- the retry window counts from here
  created_at      timestamptz NOT NULL,
  delivered_at    timestamptz,
  UNIQUE (message_id, endpoint_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status = 'pending';
CREATE INDEX webhook_deliveries_by_endpoint ON webhook_deliveries (endpoint_id, id);
CREATE INDEX webhook_deliveries_by_status ON webhook_deliveries (status, id);
