-- Holds whose expiry has passed, the longest expired first (reservation_state_expiry_idx),
-- as they are now, with their item stream's version (part of the release's command id).
-- $1 limit.
SELECT r.org_id, r.item_id, r.location_id, r.job_id, r.quantity, r.expires_at, s.version
FROM reservation_state r
JOIN streams s ON s.org_id = r.org_id AND s.stream = 'item-' || r.item_id
WHERE r.expires_at <= now()
ORDER BY r.expires_at
LIMIT $1
