-- The events of one replay chunk, decoded once into columns for the rebuild statements
-- (rebuild_*.sql) to share. In the replay's own schema, so every session of the replay can
-- stage and read it; unlogged, since it is scratch that no crash needs to keep.
CREATE UNLOGGED TABLE {schema}.replay_stage (
    position         bigint NOT NULL,
    org_id           bigint NOT NULL,
    type             text NOT NULL,
    recorded_at      timestamptz NOT NULL,
    user_name        text,
    item_id          bigint,
    location_id      bigint,
    quantity         bigint,  -- NULL: not a stock event
    quantity_change  bigint,  -- as projections/movement.py `change`
    reserved_change  bigint,
    job_id           bigint,
    related_location_id bigint,
    expires_at       timestamptz,
    notes            text,
    reason           text,
    attributes       jsonb    -- of ItemCreated/ItemUpdated/LocationCreated/LocationUpdated
)
