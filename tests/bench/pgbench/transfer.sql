-- Transfer (POST /transfers): two events on stream item-<item> in one append call,
-- Transfer_out at loc (version v+1) and Transfer_in at loc2 (version v+2, chained to the
-- first event's hash), and both stock rows. Otherwise as add.sql.
-- Variables given with -D: org, first_item, nitems, loc_a, job_base.
\set item :first_item + random(0, :nitems - 1)
\set loc :loc_a + random(0, 1)
\set loc2 2 * :loc_a + 1 - :loc
\set qty random(1, 5)
-- load_snapshot: generated from ledger/sql/load_snapshot.sql (python -m tests.bench.workload)
WITH places AS (
    SELECT p.item_id, p.location_id
    FROM unnest(ARRAY[:item::bigint, :item::bigint], ARRAY[:loc::bigint, :loc2::bigint]) AS p(item_id, location_id)
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
     WHERE l.org_id = :org::bigint AND l.location_id = ANY (ARRAY[:loc::bigint, :loc2::bigint])) AS locations,
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
), src AS (
    SELECT quantity, reserved FROM stock_state
    WHERE item_id = :item::bigint AND location_id = :loc::bigint
), dst AS (
    SELECT quantity, reserved FROM stock_state
    WHERE item_id = :item::bigint AND location_id = :loc2::bigint
), e AS (
    SELECT gen_random_uuid() AS id1, gen_random_uuid() AS id2, gen_random_uuid() AS transfer_id,
           head.version + 1 AS version, head.last_hash AS prev_hash, now() AS recorded_at,
           jsonb_build_object('request_id', md5(random()::text), 'key_id', 1, 'user_name', 'API',
                              'idempotency_key', NULL, 'correlation_id', NULL,
                              'causation_id', NULL) AS metadata,
           src.quantity - :qty::bigint AS src_quantity, src.reserved AS src_reserved,
           dst.quantity + :qty::bigint AS dst_quantity, dst.reserved AS dst_reserved
    FROM head, src, dst
), d AS (
    SELECT e.*,
           jsonb_build_object('type', 'Transfer_out', 'item_id', :item::bigint,
                              'location_id', :loc::bigint, 'to_location_id', :loc2::bigint,
                              'quantity', :qty::bigint, 'transfer_id', e.transfer_id,
                              'notes', NULL) AS data1,
           jsonb_build_object('type', 'Transfer_in', 'item_id', :item::bigint,
                              'location_id', :loc2::bigint, 'from_location_id', :loc::bigint,
                              'quantity', :qty::bigint, 'transfer_id', e.transfer_id,
                              'notes', NULL) AS data2
    FROM e
), h1 AS (
    SELECT d.*, encode(sha256(convert_to(d.prev_hash || jsonb_build_object(
               'data', d.data1, 'event_id', d.id1, 'metadata', d.metadata, 'org_id', :org::bigint,
               'prev_hash', d.prev_hash, 'recorded_at', d.recorded_at,
               'stream', 'item-' || :item::bigint, 'type', 'Transfer_out', 'version', d.version)::text,
               'UTF8')), 'hex') AS hash1
    FROM d
), h AS (
    SELECT h1.*, encode(sha256(convert_to(h1.hash1 || jsonb_build_object(
               'data', h1.data2, 'event_id', h1.id2, 'metadata', h1.metadata, 'org_id', :org::bigint,
               'prev_hash', h1.hash1, 'recorded_at', h1.recorded_at,
               'stream', 'item-' || :item::bigint, 'type', 'Transfer_in', 'version', h1.version + 1)::text,
               'UTF8')), 'hex') AS hash2
    FROM h1
)
SELECT append_events(:org::bigint,
    ARRAY[h.id1, h.id2], ARRAY['item-' || :item::bigint, 'item-' || :item::bigint],
    ARRAY[h.version, h.version + 1], ARRAY['Transfer_out', 'Transfer_in'], ARRAY[h.data1, h.data2],
    ARRAY[h.metadata, h.metadata], ARRAY[h.recorded_at, h.recorded_at],
    ARRAY[h.prev_hash, h.hash1], ARRAY[h.hash1, h.hash2],
    ARRAY['item-' || :item::bigint], ARRAY[h.version + 1], ARRAY[h.hash2],
    ARRAY[:item::bigint, :item::bigint], ARRAY[:loc::bigint, :loc2::bigint],
    ARRAY[h.src_quantity, h.dst_quantity], ARRAY[h.src_reserved, h.dst_reserved],
    '{}', '{}', '{}', '{}', '{}',
    '{}', '{}', '{}', '{}',
    '{}', '{}')
FROM h;
