-- A page of one organization's ledger: its events after position $2 up to the horizon $3,
-- in position order; $5 keeps only these types (NULL: all).
-- $1 org_id; $4 limit.
SELECT position, event_id, org_id, stream, version, type, data, metadata, recorded_at, prev_hash, hash
FROM events
WHERE org_id = $1 AND position > $2 AND position <= $3
  AND ($5::text[] IS NULL OR type = ANY ($5::text[]))
ORDER BY position
LIMIT $4
