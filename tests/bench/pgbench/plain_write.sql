-- The plain durable write: the least a durable stock movement costs in PostgreSQL. One
-- transaction: one UPDATE of a stock row and one INSERT of an event row, committed with
-- synchronous_commit as the server has it (tables: tests/bench/sql/plain_tables.sql).
-- No read of the stream, no version check, no hash: the version is not tracked (1).
-- The denominator of rows 1f, 1h, 1i and 1j. Variables given with -D: first_item,
-- nitems, loc_a (the same items and locations as the ledger's seed).
\set item :first_item + random(0, :nitems - 1)
\set loc :loc_a + random(0, 1)
\set qty random(1, 5)
BEGIN;
UPDATE plain_stock SET quantity = quantity + :qty WHERE item_id = :item AND location_id = :loc;
INSERT INTO plain_events (event_id, stream, version, type, data, recorded_at)
VALUES (gen_random_uuid(), 'item-' || :item::bigint, 1, 'Add',
        jsonb_build_object('item_id', :item::bigint, 'location_id', :loc::bigint, 'quantity', :qty::bigint), now());
END;
