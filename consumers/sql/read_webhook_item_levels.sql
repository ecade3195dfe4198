SELECT l.org_id, l.item_id, l.quantity_on_hand, l.min_stock_level, l.low, l.part_number, l.part_name, l.position
FROM webhook_item_levels l
JOIN unnest($1::bigint[], $2::bigint[]) AS k(org_id, item_id) ON l.org_id = k.org_id AND l.item_id = k.item_id
