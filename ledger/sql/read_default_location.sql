-- Where stock goes when a caller names no location: the organization's first active one.
SELECT location_id FROM location_state
WHERE org_id = $1 AND (attributes ->> 'is_active')::boolean
ORDER BY location_id LIMIT 1
