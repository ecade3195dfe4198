-- One batch of locations, one row per location the batch touched, with the attributes of
-- its last event (every location event carries the whole set). created_at is set by the
-- batch that holds LocationCreated.
MERGE INTO {schema}.locations AS l
USING (
    SELECT *
    FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::text[], $6::text[],
                $7::text[], $8::text[], $9::boolean[], $10::timestamptz[], $11::timestamptz[])
         AS u(org_id, location_id, location_name, location_type, address, city, state, zip,
              is_active, created_at, updated_at)
) AS u
ON l.org_id = u.org_id AND l.location_id = u.location_id
WHEN MATCHED THEN UPDATE SET
    location_name = u.location_name,
    location_type = u.location_type,
    address = u.address,
    city = u.city,
    state = u.state,
    zip = u.zip,
    is_active = u.is_active,
    updated_at = u.updated_at
WHEN NOT MATCHED THEN INSERT (
    org_id, location_id, location_name, location_type, address, city, state, zip, is_active,
    created_at, updated_at
) VALUES (
    u.org_id, u.location_id, u.location_name, u.location_type, u.address, u.city, u.state,
    u.zip, u.is_active, u.created_at, u.updated_at
)
