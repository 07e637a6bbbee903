-- The end of one or more events' batches as a function (postgres-statements.ts, closeBatch), and the
-- guard it and the batch's other closing statements fail with. Runs with search_path set to the store's
-- schema, like 001; the functions keep it (SET search_path FROM CURRENT), so they find the schema's tables
-- whatever the caller's search_path. Only adds functions: a build before this one does not call them and
-- keeps working on a schema that has them.

-- A closing statement's guarded write that found no row to write (someone wrote to that event without
-- its row lock) fails the statement, so the transaction's COMMIT can travel in the same round trip as its
-- writes: check_violation with the constraint name 'batch_guard' and the event's id as the detail (the
-- store tells by them which event of a multi-event commit failed). Returns false otherwise.
CREATE FUNCTION batch_guard(event_id text, problem text) RETURNS boolean
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
  IF problem IS NOT NULL THEN
    RAISE EXCEPTION '%', problem USING ERRCODE = 'check_violation', CONSTRAINT = 'batch_guard', DETAIL = event_id;
  END IF;
  RETURN false;
END
$$;

-- closeBatch: the new orders and holds of one or more events' batches, their seats, the customers' new
-- counts, the first answers to their idempotency keys, their webhook messages and the events' counters,
-- every row with its event's id (the arrays are CloseBatchParams, postgres-statements.ts, in order). A
-- function rather than a statement sent each time: PL/pgSQL keeps its plan in the server connection
-- (working behind PgBouncer in transaction mode too, unlike a named prepared statement), so a tick does
-- not parse and plan this statement again; a generic plan (plan_cache_mode), as every call has the same
-- shape. Every write is guarded on its own, whatever the batches decided before:
-- - seat_claims' primary key (event_id, seat_id): a seat claimed twice fails the statement;
-- - customers: active holds + confirmed orders <= the event's maxPerCustomer, checked on the locked row;
-- - idempotency's primary key (event_id, key): a key answered twice fails the statement;
-- - sold + held <= capacity is in the WHERE (and in a CHECK), and sold + held <= quota per ticket type:
--   the database, not the lock, forbids overselling;
-- and an event that did not get all of its customers', counters' and tiers' rows fails it (batch_guard).
-- Returns 0.
CREATE FUNCTION close_batch(
  p_sale_event_ids text[],
  p_sale_ids text[],
  p_sale_customer_ids text[],
  p_sale_quantities integer[],
  p_sale_seats text[],
  p_sale_kinds text[],
  p_sale_ats timestamptz[],
  p_sale_lines text[],
  p_sale_totals bigint[],
  p_sale_currencies text[],
  p_now timestamptz,
  p_tier_event_ids text[],
  p_tier_ids text[],
  p_tier_sold_deltas integer[],
  p_tier_held_deltas integer[],
  p_claim_event_ids text[],
  p_claim_seat_ids text[],
  p_claim_owner_ids text[],
  p_claim_sold boolean[],
  p_taken_event_ids text[],
  p_taken_customer_ids text[],
  p_taken_tickets integer[],
  p_answer_event_ids text[],
  p_answer_keys text[],
  p_answer_fingerprints text[],
  p_answer_outcomes text[],
  p_outbox_ids text[],
  p_outbox_event_ids text[],
  p_outbox_types text[],
  p_outbox_payloads text[],
  p_counter_event_ids text[],
  p_sold_deltas integer[],
  p_held_deltas integer[],
  p_expected_customers integer[],
  p_expected_tiers integer[]
) RETURNS integer
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
  refused_count integer;
BEGIN
  WITH sale AS (
    SELECT * FROM unnest(p_sale_event_ids::text[], p_sale_ids::text[], p_sale_customer_ids::text[],
                         p_sale_quantities::integer[], p_sale_seats::text[], p_sale_kinds::text[],
                         p_sale_ats::timestamptz[], p_sale_lines::text[], p_sale_totals::bigint[],
                         p_sale_currencies::text[])
      AS sale (event_id, id, customer_id, quantity, seats, kind, at, lines, total, currency)
  ), new_orders AS (
    INSERT INTO orders (id, event_id, customer_id, quantity, seats, status, created_at, lines, total,
                             currency)
    SELECT id, event_id, customer_id, quantity,
           CASE WHEN seats IS NULL THEN NULL ELSE ARRAY(SELECT jsonb_array_elements_text(seats::jsonb)) END,
           'confirmed', at, lines::jsonb, total, currency
    FROM sale WHERE kind = 'order'
  ), new_holds AS (
    INSERT INTO holds (id, event_id, customer_id, quantity, seats, status, expires_at, created_at,
                            lines, total, currency)
    SELECT id, event_id, customer_id, quantity,
           CASE WHEN seats IS NULL THEN NULL ELSE ARRAY(SELECT jsonb_array_elements_text(seats::jsonb)) END,
           'active', at, p_now, lines::jsonb, total, currency
    FROM sale WHERE kind = 'hold'
  ), tiers AS (
    -- sold + held <= quota per ticket type, in the WHERE (and in a CHECK)
    UPDATE price_tiers t SET sold = t.sold + d.sold, held = t.held + d.held
    FROM unnest(p_tier_event_ids::text[], p_tier_ids::text[], p_tier_sold_deltas::integer[],
                p_tier_held_deltas::integer[]) AS d (event_id, tier_id, sold, held)
    WHERE t.event_id = d.event_id AND t.tier_id = d.tier_id
      AND (t.quota IS NULL OR t.sold + d.sold + t.held + d.held <= t.quota)
      AND t.sold + d.sold >= 0 AND t.held + d.held >= 0
    RETURNING t.event_id
  ), claims AS (
    INSERT INTO seat_claims (event_id, seat_id, owner_id, sold)
    SELECT event_id, seat_id, owner_id, sold
    FROM unnest(p_claim_event_ids::text[], p_claim_seat_ids::text[], p_claim_owner_ids::text[],
                p_claim_sold::boolean[]) AS claim (event_id, seat_id, owner_id, sold)
  ), customers AS (
    -- the limit is the locked event row's (the one the batch decided on)
    INSERT INTO customer_tickets AS c (event_id, customer_id, tickets)
    SELECT taken.event_id, taken.customer_id, taken.tickets
    FROM unnest(p_taken_event_ids::text[], p_taken_customer_ids::text[], p_taken_tickets::integer[])
      AS taken (event_id, customer_id, tickets)
    JOIN events e ON e.id = taken.event_id
    WHERE taken.tickets <= e.max_per_customer
    ON CONFLICT (event_id, customer_id) DO UPDATE SET tickets = c.tickets + EXCLUDED.tickets
    WHERE c.tickets + EXCLUDED.tickets
          <= (SELECT max_per_customer FROM events e WHERE e.id = c.event_id)
    RETURNING c.event_id
  ), answers AS (
    INSERT INTO idempotency (event_id, key, fingerprint, outcome, created_at)
    SELECT event_id, key, fingerprint, outcome::jsonb, p_now
    FROM unnest(p_answer_event_ids::text[], p_answer_keys::text[], p_answer_fingerprints::text[],
                p_answer_outcomes::text[]) AS answer (event_id, key, fingerprint, outcome)
  ), outbox AS (
    -- the batches' webhook messages: they commit with the changes they report, or not at all
    INSERT INTO outbox (id, event_id, type, payload, created_at)
    SELECT id, event_id, type, payload, p_now
    FROM unnest(p_outbox_ids::text[], p_outbox_event_ids::text[], p_outbox_types::text[],
                p_outbox_payloads::text[]) WITH ORDINALITY AS o (id, event_id, type, payload, n)
    ORDER BY n
  ), counters AS (
    UPDATE events e SET sold = e.sold + d.sold, held = e.held + d.held
    FROM unnest(p_counter_event_ids::text[], p_sold_deltas::integer[], p_held_deltas::integer[])
      AS d (id, sold, held)
    WHERE e.id = d.id AND e.sold + d.sold + e.held + d.held <= e.capacity
      AND e.sold + d.sold >= 0 AND e.held + d.held >= 0
    RETURNING e.id
  ), refused AS (
    -- each event got all of its rows (its customers', its counters' and its tiers'), or batch_guard fails
    -- the statement
    SELECT x.event_id,
           CASE WHEN (SELECT count(*) FROM customers c WHERE c.event_id = x.event_id) <> x.customers
                  THEN 'a customer''s count would pass maxPerCustomer'
                WHEN NOT EXISTS (SELECT 1 FROM counters c WHERE c.id = x.event_id)
                  THEN 'the event''s counters would pass capacity'
                WHEN (SELECT count(*) FROM tiers t WHERE t.event_id = x.event_id) <> x.tiers
                  THEN 'a ticket type''s counters would pass its quota'
           END AS problem
    FROM unnest(p_counter_event_ids::text[], p_expected_customers::integer[], p_expected_tiers::integer[])
      AS x (event_id, customers, tiers)
  )
  SELECT count(*)::int INTO refused_count FROM refused WHERE batch_guard(event_id, problem);
  RETURN refused_count;
END
$$;

-- What the batches of executeMany() decide on (postgres-statements.ts, decidingOf), read after their event
-- rows' locks, in one statement whose plan the server keeps: the stored first answers to their keys, the
-- customers' counts, the requested seats' owners and the events' tiers, each as a JSON array of rows
-- with their columns, and the database's clock. Each (event, key) pair is looked up in its primary key
-- whatever the table's size or statistics (the LIMIT keeps the planner from making the lateral lookup a
-- hash join over the whole table).
CREATE FUNCTION deciding_of(
  p_answer_event_ids text[],
  p_answer_keys text[],
  p_customer_event_ids text[],
  p_customer_ids text[],
  p_seat_event_ids text[],
  p_seat_ids text[],
  p_event_ids text[]
) RETURNS TABLE (answers json, customers json, seats json, tiers json, clock_ms float8)
LANGUAGE plpgsql VOLATILE
SET search_path FROM CURRENT
SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
  RETURN QUERY
  SELECT
    (SELECT coalesce(json_agg(r), '[]') FROM (
       SELECT i.event_id, i.key, i.fingerprint, i.outcome
       FROM unnest(p_answer_event_ids, p_answer_keys) AS w (event_id, key)
       CROSS JOIN LATERAL (SELECT * FROM idempotency i
                           WHERE i.event_id = w.event_id AND i.key = w.key LIMIT 1) i) r) AS answers,
    (SELECT coalesce(json_agg(r), '[]') FROM (
       SELECT c.event_id, c.customer_id, c.tickets
       FROM unnest(p_customer_event_ids, p_customer_ids) AS w (event_id, customer_id)
       CROSS JOIN LATERAL (SELECT * FROM customer_tickets c
                           WHERE c.event_id = w.event_id AND c.customer_id = w.customer_id LIMIT 1) c) r)
      AS customers,
    (SELECT coalesce(json_agg(r), '[]') FROM (
       SELECT c.event_id, c.seat_id, c.owner_id
       FROM unnest(p_seat_event_ids, p_seat_ids) AS w (event_id, seat_id)
       CROSS JOIN LATERAL (SELECT * FROM seat_claims c
                           WHERE c.event_id = w.event_id AND c.seat_id = w.seat_id LIMIT 1) c) r) AS seats,
    (SELECT coalesce(json_agg(r), '[]') FROM (
       SELECT event_id, tier_id, sold, held FROM price_tiers WHERE event_id = ANY(p_event_ids)) r) AS tiers,
    (extract(epoch FROM clock_timestamp()) * 1000)::float8 AS clock_ms;
END
$$;
