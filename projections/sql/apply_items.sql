-- One batch of the items projection, one row per item the batch touched.
-- Stock events move quantity_on_hand by quantity_change. ItemCreated/ItemUpdated bring the
-- whole attribute set (has_attributes); ItemDeleted sets deleted. A row is inserted only by the
-- batch that holds the item's ItemCreated, so created_at is set exactly once.
MERGE INTO {schema}.items AS i
USING (
    SELECT *
    FROM unnest($1::bigint[], $2::bigint[], $3::boolean[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::bigint[], $10::bigint[], $11::float8[], $12::float8[],
                $13::bigint[], $14::bigint[], $15::boolean[], $16::timestamptz[], $17::timestamptz[])
         AS u(org_id, item_id, has_attributes, part_number, part_name, description, category,
              serial_number, min_stock_level, reorder_quantity, cost_per_unit, price_per_unit,
              supplier_id, quantity_change, deleted, created_at, updated_at)
) AS u
ON i.org_id = u.org_id AND i.item_id = u.item_id
WHEN MATCHED AND u.has_attributes THEN UPDATE SET
    part_number = u.part_number,
    part_name = u.part_name,
    description = u.description,
    category = u.category,
    serial_number = u.serial_number,
    min_stock_level = u.min_stock_level,
    reorder_quantity = u.reorder_quantity,
    cost_per_unit = u.cost_per_unit,
    price_per_unit = u.price_per_unit,
    supplier_id = u.supplier_id,
    quantity_on_hand = i.quantity_on_hand + u.quantity_change,
    deleted = i.deleted OR u.deleted,
    updated_at = u.updated_at
WHEN MATCHED THEN UPDATE SET
    quantity_on_hand = i.quantity_on_hand + u.quantity_change,
    deleted = i.deleted OR u.deleted,
    updated_at = coalesce(u.updated_at, i.updated_at)
WHEN NOT MATCHED THEN INSERT (
    org_id, item_id, part_number, part_name, description, category, serial_number,
    quantity_on_hand, min_stock_level, reorder_quantity, cost_per_unit, price_per_unit,
    supplier_id, deleted, created_at, updated_at
) VALUES (
    u.org_id, u.item_id, u.part_number, u.part_name, u.description, u.category, u.serial_number,
    u.quantity_change, u.min_stock_level, u.reorder_quantity, u.cost_per_unit, u.price_per_unit,
    u.supplier_id, u.deleted, u.created_at, u.updated_at
)
