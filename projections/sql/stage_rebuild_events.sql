-- One chunk of the ledger ($1 < position <= $2) into the rebuild stage. The {effect:...}
-- columns are each event's effect on stock, filled in from ledger/effects.py by
-- projections/stage_sql.py (a CASE over the event types each): the same rules the
-- projector, evolve and verify apply, so no event type's arithmetic is written here.
INSERT INTO {schema}.rebuild_stage
SELECT e.position, e.org_id, e.type, e.recorded_at, e.metadata ->> 'user_name',
       (e.data ->> 'item_id')::bigint, (e.data ->> 'location_id')::bigint,
       {effect:signed_quantity},
       {effect:quantity_change},
       {effect:reserved_change},
       {effect:consumed},
       {effect:released},
       {effect:renews},
       (e.data ->> 'job_id')::bigint,
       coalesce(e.data ->> 'to_location_id', e.data ->> 'from_location_id')::bigint,
       (e.data ->> 'expires_at')::timestamptz,
       e.data ->> 'notes',
       e.data ->> 'reason',
       CASE WHEN e.type IN ('ItemCreated', 'ItemUpdated', 'LocationCreated', 'LocationUpdated')
            THEN e.data -> 'attributes' END
FROM events e
WHERE e.position > $1 AND e.position <= $2
