-- One item of an organization ($1 org_id, $2 item_id); deleted ones only if $3.
SELECT item_id AS id, part_number, part_name, description, category, serial_number,
       quantity_on_hand, min_stock_level, reorder_quantity, cost_per_unit, price_per_unit,
       supplier_id, created_at, updated_at
FROM {schema}.items
WHERE org_id = $1 AND item_id = $2 AND (NOT deleted OR $3::boolean)
