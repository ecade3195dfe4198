-- Stock levels of the staged chunk, added to what earlier chunks left (as apply_stock.sql);
-- last_updated is the recorded_at of the chunk's last movement at the place.
INSERT INTO {schema}.stock AS s (org_id, item_id, location_id, quantity, reserved, last_updated)
SELECT g.org_id, g.item_id, g.location_id, g.quantity, g.reserved, last.recorded_at
FROM (SELECT org_id, item_id, location_id, sum(quantity_change)::bigint AS quantity,
             sum(reserved_change)::bigint AS reserved, max(position) AS last_position
      FROM {schema}.rebuild_stage
      WHERE signed_quantity IS NOT NULL  -- stock events
      GROUP BY org_id, item_id, location_id) AS g
JOIN {schema}.rebuild_stage last ON last.position = g.last_position
ON CONFLICT (org_id, item_id, location_id) DO UPDATE SET
    quantity = s.quantity + excluded.quantity,
    reserved = s.reserved + excluded.reserved,
    last_updated = excluded.last_updated
