SELECT key_id, org_id, name, key_prefix, scopes, allowed_ips, created_at, revoked_at
FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL
