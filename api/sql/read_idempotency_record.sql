SELECT fingerprint, status, headers, body
FROM idempotency_records WHERE org_id = $1 AND idempotency_key = $2
