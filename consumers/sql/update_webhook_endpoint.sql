-- PATCH /webhooks/{id}. NULL leaves a field as it is ($5 says whether to set description,
-- which may become NULL). Every right-hand side reads the row as it was before.
-- Enabling clears why it was disabled; enabling or a new URL clears its run of failures.
-- A new secret ($8) pushes the current one into its grace period ($9 seconds).
UPDATE webhook_endpoints SET
    url = coalesce($3, url),
    events = coalesce($4, events),
    description = CASE WHEN $5 THEN $6 ELSE description END,
    enabled = coalesce($7, enabled),
    disabled_at = CASE WHEN $7 IS NULL THEN disabled_at
                       WHEN $7 THEN NULL
                       WHEN enabled THEN now() ELSE disabled_at END,
    disabled_reason = CASE WHEN $7 IS NULL THEN disabled_reason
                           WHEN $7 THEN NULL
                           WHEN enabled THEN 'disabled by request' ELSE disabled_reason END,
    failing_since = CASE WHEN $7 OR $3::text IS NOT NULL THEN NULL ELSE failing_since END,
    previous_secret = CASE WHEN $8::text IS NULL THEN previous_secret ELSE secret END,
    previous_secret_expires_at = CASE WHEN $8::text IS NULL THEN previous_secret_expires_at
                                      ELSE now() + $9 * interval '1 second' END,
    secret = coalesce($8, secret),
    updated_at = now()
WHERE endpoint_id = $1 AND org_id = $2
RETURNING endpoint_id, org_id, url, events, description, enabled, disabled_at, disabled_reason,
          failing_since, previous_secret_expires_at, created_at, updated_at, secret
