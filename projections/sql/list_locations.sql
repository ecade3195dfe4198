-- A page of an organization's locations, by id; shaped as list_items.sql.
-- $1 org_id; $2 location type or NULL; $3 active ones only; $4 limit; $5 offset.
WITH matched AS (
    SELECT *
    FROM {schema}.locations l
    WHERE l.org_id = $1
      AND ($2::text IS NULL OR l.location_type = $2)
      AND (NOT $3::boolean OR l.is_active)
)
SELECT t.total, p.*
FROM (SELECT count(*) AS total FROM matched) AS t
LEFT JOIN LATERAL (
    SELECT location_id AS id, location_name, location_type, address, city, state, zip,
           is_active, created_at, updated_at
    FROM matched
    ORDER BY location_id
    LIMIT $4 OFFSET $5
) AS p ON true
