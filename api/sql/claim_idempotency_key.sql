-- Claim the key for this request; no row back means another request has it already.
INSERT INTO idempotency_records (org_id, idempotency_key, fingerprint) VALUES ($1, $2, $3)
ON CONFLICT (org_id, idempotency_key) DO NOTHING
RETURNING true
