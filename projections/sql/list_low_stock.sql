-- A page of the low-stock list: items with a min_stock_level above 0 and at most that much
-- on hand, most critical first: the smallest fraction of the minimum on hand (none at all
-- first), then the largest shortfall, then by id. Shaped as list_items.sql.
-- $1 org_id; $2 limit; $3 offset.
WITH matched AS (
    SELECT *
    FROM {schema}.items i
    WHERE i.org_id = $1
      AND NOT i.deleted
      AND i.min_stock_level > 0
      AND i.quantity_on_hand <= i.min_stock_level
)
SELECT t.total, p.*
FROM (SELECT count(*) AS total FROM matched) AS t
LEFT JOIN LATERAL (
    SELECT item_id AS id, part_number, part_name, description, category, serial_number,
           quantity_on_hand, min_stock_level, reorder_quantity, cost_per_unit, price_per_unit,
           supplier_id, created_at, updated_at
    FROM matched
    ORDER BY quantity_on_hand::numeric / min_stock_level,
             min_stock_level - quantity_on_hand DESC,
             item_id
    LIMIT $2 OFFSET $3
) AS p ON true
