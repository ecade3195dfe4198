SELECT position, event_id, org_id, stream, version, type, data, metadata, recorded_at, prev_hash, hash
FROM events
WHERE org_id = $1 AND stream = $2 AND version > $3
ORDER BY version
LIMIT $4
