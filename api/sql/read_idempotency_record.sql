SELECT fingerprint, status, headers, body, now() - created_at AS age
FROM idempotency_records WHERE org_id = $1 AND idempotency_key = $2
