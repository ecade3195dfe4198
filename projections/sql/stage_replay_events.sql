-- One chunk of the ledger ($1 < position <= $2) into the replay stage. The quantity and
-- reserved changes are those of projections/movement.py `change` (the arithmetic of
-- ledger.decide's evolve).
INSERT INTO {schema}.replay_stage
SELECT e.position, e.org_id, e.type, e.recorded_at, e.metadata ->> 'user_name',
       (e.data ->> 'item_id')::bigint, (e.data ->> 'location_id')::bigint, q.quantity,
       CASE WHEN e.type IN ('Add', 'Transfer_in', 'Adjust') THEN q.quantity
            WHEN e.type IN ('Remove', 'Transfer_out', 'Job_complete') THEN -q.quantity
            ELSE 0 END,
       CASE e.type WHEN 'Reserve' THEN q.quantity
                   WHEN 'Release' THEN -q.quantity
                   WHEN 'Job_complete' THEN -(e.data ->> 'from_reserved')::bigint
                   ELSE 0 END,
       (e.data ->> 'job_id')::bigint,
       coalesce(e.data ->> 'to_location_id', e.data ->> 'from_location_id')::bigint,
       (e.data ->> 'expires_at')::timestamptz,
       e.data ->> 'notes',
       e.data ->> 'reason',
       CASE WHEN e.type IN ('ItemCreated', 'ItemUpdated', 'LocationCreated', 'LocationUpdated')
            THEN e.data -> 'attributes' END
FROM events e
CROSS JOIN LATERAL (SELECT (e.data ->> 'quantity')::bigint AS quantity) AS q
WHERE e.position > $1 AND e.position <= $2
