-- Take over a claim whose request never finished (its process died).
UPDATE idempotency_records SET created_at = now()
WHERE org_id = $1 AND idempotency_key = $2 AND status IS NULL AND now() - created_at > $3
RETURNING true
