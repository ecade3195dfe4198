-- Another organization's endpoint is not found, exactly as one that does not exist.
SELECT endpoint_id, org_id, url, events, description, enabled, disabled_at, disabled_reason,
       failing_since, previous_secret_expires_at, created_at, updated_at
FROM webhook_endpoints
WHERE endpoint_id = $1 AND org_id = $2
