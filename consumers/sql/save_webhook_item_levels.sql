-- Only forward: a level already past an event (a redelivery) is left as it is.
INSERT INTO webhook_item_levels AS l
    (org_id, item_id, quantity_on_hand, min_stock_level, low, part_number, part_name, position)
SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::boolean[],
                     $6::text[], $7::text[], $8::bigint[])
ON CONFLICT (org_id, item_id) DO UPDATE SET
    quantity_on_hand = excluded.quantity_on_hand, min_stock_level = excluded.min_stock_level,
    low = excluded.low, part_number = excluded.part_number, part_name = excluded.part_name,
    position = excluded.position
WHERE l.position < excluded.position
