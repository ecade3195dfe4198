-- One batch of stock levels, one row per (item, location) the batch moved: the changes of
-- quantity and reserved are added (a new row starts from them), last_updated is the
-- recorded_at of the batch's last movement there.
INSERT INTO {schema}.stock AS s (org_id, item_id, location_id, quantity, reserved, last_updated)
SELECT *
FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::timestamptz[])
ON CONFLICT (org_id, item_id, location_id) DO UPDATE SET
    quantity = s.quantity + excluded.quantity,
    reserved = s.reserved + excluded.reserved,
    last_updated = excluded.last_updated
