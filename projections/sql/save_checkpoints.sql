-- Move the checkpoints of a batch, in the batch's transaction. Each moves only from the
-- position its owner last saw ($2): should another process ever have moved one meanwhile,
-- the count comes back short and the owner rolls the whole batch back.
-- The notification ("name:position,...") is delivered at commit: it wakes the reads
-- waiting for these positions (projections/watch.py). One per batch, never per event.
-- $1 names, $2 expected current positions, $3 new positions.
WITH moved AS (
    UPDATE projection_checkpoints AS c
    SET position = m.position, updated_at = now()
    FROM unnest($1::text[], $2::bigint[], $3::bigint[]) AS m(name, expected, position)
    WHERE c.name = m.name AND c.position = m.expected
    RETURNING c.name, c.position
)
SELECT count(*), pg_notify('ledger_checkpoints', string_agg(name || ':' || position, ',')) FROM moved
