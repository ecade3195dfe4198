-- Take over the claim of a request that is no longer running, for request $4 (same
-- fingerprint $5). Gone for sure: the session that claimed the key has ended (every
-- session ends with the server, or with the API process that held it) while the claim
-- stayed. Gone presumably: it has run longer than $3 (its process hangs, or a pooler
-- keeps its session alive). A session whose start is hidden from us (another role's)
-- counts as alive.
UPDATE idempotency_records r
SET created_at = now(), claim_token = $4, claimed_by_pid = pg_backend_pid(),
    claimed_by_started = (SELECT backend_start FROM pg_stat_get_activity(pg_backend_pid()))
WHERE org_id = $1 AND idempotency_key = $2 AND fingerprint = $5 AND status IS NULL
  AND (now() - created_at > $3
       OR (claimed_by_started IS NOT NULL AND NOT EXISTS (
             SELECT FROM pg_stat_get_activity(r.claimed_by_pid) a
             WHERE a.backend_start = r.claimed_by_started OR a.backend_start IS NULL)))
RETURNING true
