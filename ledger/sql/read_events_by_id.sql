-- The events already recorded under these ids: a command that was recorded before.
SELECT position, event_id, org_id, stream, version, type, data, metadata, recorded_at, prev_hash, hash
FROM events WHERE event_id = ANY ($1::uuid[]) ORDER BY position
