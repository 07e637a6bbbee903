-- The operator's order list and CSV export page through an event's orders in byte order of the id
-- (keyset pages, COLLATE "C" so the order is the ids' own, whatever the database's collation). It
-- replaces the index on event_id alone, which it covers, so a sale writes no more index entries than before.
DROP INDEX IF EXISTS orders_event;
CREATE INDEX orders_event_id ON orders (event_id, id COLLATE "C");
