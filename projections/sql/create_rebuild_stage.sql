-- The events of one rebuild chunk, decoded once into columns for the rebuild statements
-- (rebuild_*.sql) to share. In the rebuild's own schema, so every session of the rebuild can
-- stage and read it; unlogged, since it is scratch that no crash needs to keep.
CREATE UNLOGGED TABLE {schema}.rebuild_stage (
    position         bigint NOT NULL,
    org_id           bigint NOT NULL,
    type             text NOT NULL,
    recorded_at      timestamptz NOT NULL,
    user_name        text,
    item_id          bigint,
    location_id      bigint,
    -- The event's effect on stock (ledger/effects.py, see stage_rebuild_events.sql):
    signed_quantity  bigint,  -- the history's quantity; NULL: not a stock event
    quantity_change  bigint,  -- of the quantity on hand at (item_id, location_id)
    reserved_change  bigint,  -- of reserved there, and of the job's hold
    consumed         bigint,  -- by the job
    released         bigint,  -- by the job
    renews           boolean, -- the job's hold there takes expires_at
    job_id           bigint,
    related_location_id bigint,
    expires_at       timestamptz,
    notes            text,
    reason           text,
    attributes       jsonb    -- of ItemCreated/ItemUpdated/LocationCreated/LocationUpdated
)
