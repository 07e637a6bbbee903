-- The operator's order list and CSV export page through an event's orders by id (keyset pages), in both
-- layouts: in the single layout every event's orders share the table, so the page must not scan them all.
CREATE INDEX orders_by_event ON orders (event_id, id);
