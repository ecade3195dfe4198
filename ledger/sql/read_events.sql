SELECT position, event_id, org_id, stream, version, type, data, metadata, recorded_at, prev_hash, hash
FROM events
WHERE position > $1 AND position <= $2
ORDER BY position
LIMIT $3
