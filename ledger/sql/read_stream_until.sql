-- A page of one stream's events up to position $3, in version order, after version $4.
-- $1 org_id; $2 stream; $5 limit.
SELECT position, version, data, recorded_at
FROM events
WHERE org_id = $1 AND stream = $2 AND position <= $3 AND version > $4
ORDER BY version
LIMIT $5
