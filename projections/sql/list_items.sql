-- A page of an organization's items, deleted ones left out, by id; every row carries the
-- total, and an empty page still returns one row (total only, the rest NULL).
-- $1 org_id; $2 category (exact) or NULL; $3 search as an ILIKE pattern or NULL;
-- $4 low stock only; $5 limit; $6 offset.
WITH matched AS (
    SELECT *
    FROM {schema}.items i
    WHERE i.org_id = $1
      AND NOT i.deleted
      AND ($2::text IS NULL OR i.category = $2)
      AND ($3::text IS NULL OR i.part_number ILIKE $3 OR i.part_name ILIKE $3)
      AND (NOT $4::boolean OR (i.min_stock_level > 0 AND i.quantity_on_hand <= i.min_stock_level))
)
SELECT t.total, p.*
FROM (SELECT count(*) AS total FROM matched) AS t
LEFT JOIN LATERAL (
    SELECT item_id AS id, part_number, part_name, description, category, serial_number,
           quantity_on_hand, min_stock_level, reorder_quantity, cost_per_unit, price_per_unit,
           supplier_id, created_at, updated_at
    FROM matched
    ORDER BY item_id
    LIMIT $5 OFFSET $6
) AS p ON true
