-- A new endpoint, unless the organization already has as many as it may ($6).
INSERT INTO webhook_endpoints (org_id, url, events, description, secret)
SELECT $1, $2, $3, $4, $5
WHERE (SELECT count(*) FROM webhook_endpoints WHERE org_id = $1) < $6
RETURNING endpoint_id, org_id, url, events, description, enabled, disabled_at, disabled_reason,
          failing_since, previous_secret_expires_at, created_at, updated_at, secret
