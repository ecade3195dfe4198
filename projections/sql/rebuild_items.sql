-- Items of the staged chunk, merged as apply_items.sql merges a batch: the attributes of the
-- item's last ItemCreated/ItemUpdated, deleted by ItemDeleted, quantity_on_hand moved by
-- every stock event that moves stock on hand (Reserve and Release move none, and are left
-- out), created_at from ItemCreated, updated_at from the last of the three lifecycle events.
MERGE INTO {schema}.items AS i
USING (
    -- The values of the last lifecycle events come from aggregates over those few rows
    -- (FILTER), not from joins back to the stage, which would hash every staged event.
    SELECT g.org_id, g.item_id, g.quantity_change, g.deleted, g.attributes IS NOT NULL AS has_attributes,
           g.created_at, g.updated_at, attrs.*
    FROM (SELECT org_id, item_id,
                 sum(quantity_change)::bigint AS quantity_change,
                 bool_or(type = 'ItemDeleted') AS deleted,
                 (array_agg(attributes ORDER BY position DESC)
                     FILTER (WHERE type IN ('ItemCreated', 'ItemUpdated')))[1] AS attributes,
                 min(recorded_at) FILTER (WHERE type = 'ItemCreated') AS created_at,
                 (array_agg(recorded_at ORDER BY position DESC)
                     FILTER (WHERE type IN ('ItemCreated', 'ItemUpdated', 'ItemDeleted')))[1] AS updated_at
          FROM {schema}.rebuild_stage
          WHERE item_id IS NOT NULL AND (signed_quantity IS NULL OR quantity_change <> 0)
          GROUP BY org_id, item_id) AS g
    LEFT JOIN LATERAL jsonb_to_record(g.attributes) AS attrs(
        part_number text, part_name text, description text, category text, serial_number text,
        min_stock_level bigint, reorder_quantity bigint, cost_per_unit float8, price_per_unit float8,
        supplier_id bigint) ON true
) AS u
ON i.org_id = u.org_id AND i.item_id = u.item_id
WHEN MATCHED AND u.has_attributes THEN UPDATE SET
    part_number = u.part_number,
    part_name = u.part_name,
    description = u.description,
    category = u.category,
    serial_number = u.serial_number,
    min_stock_level = coalesce(u.min_stock_level, 0),
    reorder_quantity = coalesce(u.reorder_quantity, 0),
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
    u.quantity_change, coalesce(u.min_stock_level, 0), coalesce(u.reorder_quantity, 0), u.cost_per_unit,
    u.price_per_unit, u.supplier_id, u.deleted, u.created_at, u.updated_at
)
