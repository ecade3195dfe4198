-- Locations of the staged chunk, merged as apply_locations.sql merges a batch: the
-- attributes of each location's last event; created_at from its LocationCreated.
MERGE INTO {schema}.locations AS l
USING (
    SELECT g.org_id, g.location_id, g.created_at, g.updated_at, attrs.*
    FROM (SELECT org_id, location_id,
                 (array_agg(attributes ORDER BY position DESC))[1] AS attributes,
                 min(recorded_at) FILTER (WHERE type = 'LocationCreated') AS created_at,
                 (array_agg(recorded_at ORDER BY position DESC))[1] AS updated_at
          FROM {schema}.rebuild_stage
          WHERE type IN ('LocationCreated', 'LocationUpdated')
          GROUP BY org_id, location_id) AS g
    CROSS JOIN LATERAL jsonb_to_record(g.attributes) AS attrs(
        location_name text, location_type text, address text, city text, state text, zip text,
        is_active boolean)
) AS u
ON l.org_id = u.org_id AND l.location_id = u.location_id
WHEN MATCHED THEN UPDATE SET
    location_name = u.location_name,
    location_type = coalesce(u.location_type, 'warehouse'),
    address = u.address,
    city = u.city,
    state = u.state,
    zip = u.zip,
    is_active = coalesce(u.is_active, true),
    updated_at = u.updated_at
WHEN NOT MATCHED THEN INSERT (
    org_id, location_id, location_name, location_type, address, city, state, zip, is_active,
    created_at, updated_at
) VALUES (
    u.org_id, u.location_id, u.location_name, coalesce(u.location_type, 'warehouse'), u.address, u.city,
    u.state, u.zip, coalesce(u.is_active, true), u.created_at, u.updated_at
)
