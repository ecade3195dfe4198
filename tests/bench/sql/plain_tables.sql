-- The plain durable write's tables (tests/bench/pgbench/plain_write.sql), in a database of
-- their own: a stock table and an events-like table, no functions, no triggers, no hash
-- chain, one index each (the primary key). What a hand-written service would start from.
CREATE TABLE plain_stock (
    item_id bigint NOT NULL,
    location_id bigint NOT NULL,
    quantity bigint NOT NULL,
    PRIMARY KEY (item_id, location_id)
);

CREATE TABLE plain_events (
    id bigserial PRIMARY KEY,
    event_id uuid NOT NULL,
    stream text NOT NULL,
    version integer NOT NULL,
    type text NOT NULL,
    data jsonb NOT NULL,
    recorded_at timestamptz NOT NULL
);
