UPDATE idempotency_records SET status = $3, headers = $4, body = $5
WHERE org_id = $1 AND idempotency_key = $2
