SELECT endpoint_id, org_id, url, events, description, enabled, disabled_at, disabled_reason,
       failing_since, previous_secret_expires_at, created_at, updated_at
FROM webhook_endpoints
WHERE org_id = $1
ORDER BY endpoint_id
