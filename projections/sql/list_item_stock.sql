-- An item's stock entries: every location that has seen a movement of it, by location id,
-- with the location's current name and type. $1 org_id, $2 item_id.
SELECT s.location_id, l.location_name, l.location_type, s.quantity,
       s.reserved AS reserved_quantity, s.quantity - s.reserved AS available, s.last_updated
FROM {schema}.stock s
LEFT JOIN {schema}.locations l ON l.org_id = s.org_id AND l.location_id = s.location_id
WHERE s.org_id = $1 AND s.item_id = $2
ORDER BY s.location_id
