-- As read_feed.sql, for one stream ($6): positions rise with versions along a stream, so
-- the stream's own (org_id, stream, version) index gives its events in position order.
SELECT position, event_id, org_id, stream, version, type, data, metadata, recorded_at, prev_hash, hash
FROM events
WHERE org_id = $1 AND stream = $6 AND position > $2 AND position <= $3
  AND ($5::text[] IS NULL OR type = ANY ($5::text[]))
ORDER BY version
LIMIT $4
