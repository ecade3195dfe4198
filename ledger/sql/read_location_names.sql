-- The current name and type of some of an organization's locations (the write model is
-- always current; a read model may lag).
SELECT location_id, attributes ->> 'location_name' AS location_name,
       attributes ->> 'location_type' AS location_type
FROM location_state
WHERE org_id = $1 AND location_id = ANY ($2::bigint[])
