-- Streams that have events but no head (of one organization, or all when $1 is NULL): a
-- head deleted or never written. `verify` walks the heads, so it must look for these too.
SELECT DISTINCT e.org_id, e.stream
FROM events e
WHERE ($1::bigint IS NULL OR e.org_id = $1)
  AND NOT EXISTS (SELECT 1 FROM streams s WHERE s.org_id = e.org_id AND s.stream = e.stream)
ORDER BY e.org_id, e.stream
