-- A page of an item's transaction history, newest first, with the locations' current
-- names; shaped as list_items.sql (total on every row, one row for an empty page).
-- $1 org_id; $2 item_id; $3 transaction type or NULL; $4 limit; $5 offset.
WITH matched AS (
    SELECT *
    FROM {schema}.transactions t
    WHERE t.org_id = $1 AND t.item_id = $2 AND ($3::text IS NULL OR t.transaction_type = $3)
)
SELECT c.total, p.*
FROM (SELECT count(*) AS total FROM matched) AS c
LEFT JOIN LATERAL (
    SELECT t.position AS id, t.transaction_type, t.quantity, t.location_id, l.location_name,
           t.related_location_id, r.location_name AS related_location_name, t.job_id,
           t.user_name, t.notes, t.recorded_at AS created_at
    FROM matched t
    LEFT JOIN {schema}.locations l ON l.org_id = t.org_id AND l.location_id = t.location_id
    LEFT JOIN {schema}.locations r ON r.org_id = t.org_id AND r.location_id = t.related_location_id
    ORDER BY t.position DESC
    LIMIT $4 OFFSET $5
) AS p ON true
