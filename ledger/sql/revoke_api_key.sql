-- $2: the organization the key must belong to, or NULL (the operator's CLI).
UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
WHERE key_id = $1 AND ($2::bigint IS NULL OR org_id = $2)
RETURNING key_id
