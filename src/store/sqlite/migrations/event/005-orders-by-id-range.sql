-- An event's orders are one range of the orders' primary key: every order id begins with its event's
-- ulid (src/domain/ids.ts), so the keyset pages of the order list and the CSV export read that range and
-- the index (event_id, id) of migration 003 only cost each sale one more B-tree leaf to write. With many
-- events on sale in one file, that leaf was a different one for each event of a batch: dropping it sold
-- 16–19 % more in the store alone (bench/sell-batch.ts, 17 sales over 50 events a batch).
DROP INDEX IF EXISTS orders_by_event;
