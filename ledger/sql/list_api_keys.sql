-- $1: an organization id, or NULL for every organization.
SELECT k.key_id, k.org_id, o.name AS org_name, k.name, k.key_prefix, k.scopes, k.allowed_ips,
       k.created_at, k.revoked_at
FROM api_keys k JOIN organizations o USING (org_id)
WHERE $1::bigint IS NULL OR k.org_id = $1
ORDER BY k.key_id
