-- Add (POST /items/{item}/add): one event on stream item-<item>, quantity += qty at (item, loc).
-- The service's two round trips, each its own implicit transaction: the load_snapshot
-- SELECT (ledger/sql/load_snapshot.sql with this command's parameters) and one call of
-- append_events (ledger/migrations/002_append_events.sql) whose 28 arrays are computed in
-- SQL from the stream head, read under FOR UPDATE in the same statement so that clients
-- on a hot item queue for the row instead of losing a version race.
-- Variables given with -D: org, first_item, nitems, loc_a, job_base.
\set item :first_item + random(0, :nitems - 1)
\set loc :loc_a + random(0, 1)
\set qty random(1, 5)
-- load_snapshot: generated from ledger/sql/load_snapshot.sql (python -m tests.bench.workload)
WITH places AS (
    SELECT p.item_id, p.location_id
    FROM unnest(ARRAY[:item::bigint], ARRAY[:loc::bigint]) AS p(item_id, location_id)
    UNION
    SELECT r.item_id, r.location_id FROM reservation_state r WHERE r.org_id = :org::bigint AND r.job_id = ANY ('{}'::bigint[])
    UNION
    SELECT s.item_id, s.location_id FROM stock_state s WHERE s.org_id = :org::bigint AND s.item_id = ANY ('{}'::bigint[])
), wanted_items AS (
    SELECT unnest(ARRAY[:item::bigint]) AS item_id UNION SELECT item_id FROM places
)
SELECT
    (SELECT coalesce(json_agg(json_build_object(
                'item_id', i.item_id, 'version', h.version, 'last_hash', h.last_hash,
                'attributes', i.attributes, 'deleted', i.deleted,
                'quantity_on_hand', (SELECT coalesce(sum(s.quantity), 0) FROM stock_state s
                                     WHERE s.item_id = i.item_id))), '[]')
     FROM wanted_items w
     JOIN item_state i ON i.item_id = w.item_id AND i.org_id = :org::bigint
     JOIN streams h ON h.org_id = :org::bigint AND h.stream = 'item-' || i.item_id) AS items,
    (SELECT coalesce(json_agg(json_build_object(
                'location_id', l.location_id, 'version', h.version, 'last_hash', h.last_hash,
                'attributes', l.attributes)), '[]')
     FROM location_state l
     JOIN streams h ON h.org_id = :org::bigint AND h.stream = 'location-' || l.location_id
     WHERE l.org_id = :org::bigint AND l.location_id = ANY (ARRAY[:loc::bigint])) AS locations,
    (SELECT coalesce(json_agg(json_build_object(
                'item_id', s.item_id, 'location_id', s.location_id,
                'quantity', s.quantity, 'reserved', s.reserved,
                'holds', (SELECT coalesce(json_agg(json_build_object(
                                  'job_id', r.job_id, 'quantity', r.quantity, 'expires_at', r.expires_at)), '[]')
                          FROM reservation_state r
                          WHERE r.item_id = s.item_id AND r.location_id = s.location_id))), '[]')
     FROM places p
     JOIN stock_state s ON s.item_id = p.item_id AND s.location_id = p.location_id AND s.org_id = :org::bigint) AS stock;
-- append
WITH head AS (
    SELECT version, last_hash FROM streams
    WHERE org_id = :org::bigint AND stream = 'item-' || :item::bigint
    FOR UPDATE
), level AS (
    SELECT quantity, reserved FROM stock_state
    WHERE item_id = :item::bigint AND location_id = :loc::bigint
), e AS (
    SELECT gen_random_uuid() AS id, head.version + 1 AS version, head.last_hash AS prev_hash,
           now() AS recorded_at,
           jsonb_build_object('type', 'Add', 'item_id', :item::bigint, 'location_id', :loc::bigint,
                              'quantity', :qty::bigint, 'notes', NULL) AS data,
           jsonb_build_object('request_id', md5(random()::text), 'key_id', 1, 'user_name', 'API',
                              'idempotency_key', NULL, 'correlation_id', NULL,
                              'causation_id', NULL) AS metadata,
           level.quantity + :qty::bigint AS quantity, level.reserved
    FROM head, level
), h AS (
    SELECT e.*, encode(sha256(convert_to(e.prev_hash || jsonb_build_object(
               'data', e.data, 'event_id', e.id, 'metadata', e.metadata, 'org_id', :org::bigint,
               'prev_hash', e.prev_hash, 'recorded_at', e.recorded_at,
               'stream', 'item-' || :item::bigint, 'type', 'Add', 'version', e.version)::text,
               'UTF8')), 'hex') AS hash
    FROM e
)
SELECT append_events(:org::bigint,
    ARRAY[h.id], ARRAY['item-' || :item::bigint], ARRAY[h.version], ARRAY['Add'], ARRAY[h.data],
    ARRAY[h.metadata], ARRAY[h.recorded_at], ARRAY[h.prev_hash], ARRAY[h.hash],
    ARRAY['item-' || :item::bigint], ARRAY[h.version], ARRAY[h.hash],
    ARRAY[:item::bigint], ARRAY[:loc::bigint], ARRAY[h.quantity], ARRAY[h.reserved],
    '{}', '{}', '{}', '{}', '{}',
    '{}', '{}', '{}', '{}',
    '{}', '{}')
FROM h;
