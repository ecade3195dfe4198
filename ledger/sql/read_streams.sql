-- Every stream head, of one organization or of all (NULL).
SELECT org_id, stream, version, last_hash FROM streams
WHERE $1::bigint IS NULL OR org_id = $1
ORDER BY org_id, stream
