-- One item of an organization with its stock entries, in one round trip (the item
-- routes): the columns of get_item.sql, and `stock` as a JSON array of entries, one per
-- location that has seen a movement of the item, by location id, with the location's
-- current name and type (last_updated spelled in UTC, as every timestamp is encoded).
-- $1 org_id, $2 item_id; deleted items are not found.
SELECT i.item_id AS id, i.part_number, i.part_name, i.description, i.category, i.serial_number,
       i.quantity_on_hand, i.min_stock_level, i.reorder_quantity, i.cost_per_unit, i.price_per_unit,
       i.supplier_id, i.created_at, i.updated_at,
       (SELECT coalesce(json_agg(json_build_object(
                   'location_id', s.location_id, 'location_name', l.location_name,
                   'location_type', l.location_type, 'quantity', s.quantity,
                   'reserved_quantity', s.reserved, 'available', s.quantity - s.reserved,
                   'last_updated', to_char(s.last_updated AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'))
                   ORDER BY s.location_id), '[]')
        FROM {schema}.stock s
        LEFT JOIN {schema}.locations l ON l.org_id = s.org_id AND l.location_id = s.location_id
        WHERE s.org_id = i.org_id AND s.item_id = i.item_id) AS stock
FROM {schema}.items i
WHERE i.org_id = $1 AND i.item_id = $2 AND NOT i.deleted
