-- Claim the key for this request; no row back means another request has it already.
-- The claim names its token and the session that made it (see retake_idempotency_key).
INSERT INTO idempotency_records (org_id, idempotency_key, fingerprint, claim_token, claimed_by_pid, claimed_by_started)
VALUES ($1, $2, $3, $4, pg_backend_pid(), (SELECT backend_start FROM pg_stat_get_activity(pg_backend_pid())))
ON CONFLICT (org_id, idempotency_key) DO NOTHING
RETURNING true
