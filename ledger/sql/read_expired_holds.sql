-- Holds whose expiry has passed, the longest expired first (reservation_state_expiry_idx).
-- $1 limit.
SELECT org_id, item_id, location_id, job_id
FROM reservation_state
WHERE expires_at <= now()
ORDER BY expires_at
LIMIT $1
