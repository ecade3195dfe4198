-- The snapshot: the part of the write model one command (or group) decides on, in one round trip, as
-- three JSON arrays (decoded straight into typed rows by msgspec, ledger/snapshots.py).
-- $1 org_id. Each {name} is a bigint[] that ledger/snapshots.py fills in: {item_ids},
-- {location_ids}; the (item, location) places named, {place_items} / {place_locations};
-- {job_ids}, jobs whose every hold is loaded too; {whole_items}, items loaded at every
-- place. Small ones are spelled out element by element as scalar parameters
-- (ARRAY[$2::bigint, ...]), bigger ones bound as whole arrays ($2::bigint[]).
WITH places AS (
    SELECT p.item_id, p.location_id
    FROM unnest({place_items}, {place_locations}) AS p(item_id, location_id)
    UNION
    SELECT r.item_id, r.location_id FROM reservation_state r WHERE r.org_id = $1 AND r.job_id = ANY ({job_ids})
    UNION
    SELECT s.item_id, s.location_id FROM stock_state s WHERE s.org_id = $1 AND s.item_id = ANY ({whole_items})
), wanted_items AS (
    SELECT unnest({item_ids}) AS item_id UNION SELECT item_id FROM places
)
SELECT
    (SELECT coalesce(json_agg(json_build_object(
                'item_id', i.item_id, 'version', h.version, 'last_hash', h.last_hash,
                'attributes', i.attributes, 'deleted', i.deleted,
                'quantity_on_hand', (SELECT coalesce(sum(s.quantity), 0) FROM stock_state s
                                     WHERE s.item_id = i.item_id))), '[]')
     FROM wanted_items w
     JOIN item_state i ON i.item_id = w.item_id AND i.org_id = $1
     JOIN streams h ON h.org_id = $1 AND h.stream = 'item-' || i.item_id) AS items,
    (SELECT coalesce(json_agg(json_build_object(
                'location_id', l.location_id, 'version', h.version, 'last_hash', h.last_hash,
                'attributes', l.attributes)), '[]')
     FROM location_state l
     JOIN streams h ON h.org_id = $1 AND h.stream = 'location-' || l.location_id
     WHERE l.org_id = $1 AND l.location_id = ANY ({location_ids})) AS locations,
    (SELECT coalesce(json_agg(json_build_object(
                'item_id', s.item_id, 'location_id', s.location_id,
                'quantity', s.quantity, 'reserved', s.reserved,
                'holds', (SELECT coalesce(json_agg(json_build_object(
                                  'job_id', r.job_id, 'quantity', r.quantity, 'expires_at', r.expires_at)), '[]')
                          FROM reservation_state r
                          WHERE r.item_id = s.item_id AND r.location_id = s.location_id))), '[]')
     FROM places p
     JOIN stock_state s ON s.item_id = p.item_id AND s.location_id = p.location_id AND s.org_id = $1) AS stock
