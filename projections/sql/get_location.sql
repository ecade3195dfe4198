-- One location ($1 org_id, $2 location_id) and the items stocked there (quantity above 0),
-- by item id: one row per item, the location's columns repeated; a location holding
-- nothing gives one row with NULL item columns; an unknown location, no row.
SELECT l.location_id AS id, l.location_name, l.location_type, l.address, l.city, l.state,
       l.zip, l.is_active, l.created_at, l.updated_at,
       s.item_id, i.part_name, i.part_number, s.quantity, s.reserved AS reserved_quantity,
       s.quantity - s.reserved AS available
FROM {schema}.locations l
LEFT JOIN ({schema}.stock s JOIN {schema}.items i ON i.org_id = s.org_id AND i.item_id = s.item_id)
       ON s.org_id = l.org_id AND s.location_id = l.location_id AND s.quantity > 0
WHERE l.org_id = $1 AND l.location_id = $2
ORDER BY s.item_id
