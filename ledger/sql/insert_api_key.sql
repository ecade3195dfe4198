INSERT INTO api_keys (org_id, name, key_prefix, key_hash, scopes, allowed_ips)
VALUES ($1, $2, $3, $4, $5, $6)
RETURNING key_id, org_id, name, key_prefix, scopes, allowed_ips, created_at, revoked_at
