-- A retry by hand: one more attempt, now, with the same id and body. Only a delivery
-- that is no longer pending (a second retry of a pending one would change nothing).
WITH retried AS (
    UPDATE webhook_deliveries
    SET status = 'pending', next_attempt_at = now(), max_attempts = attempts + 1
    WHERE delivery_id = $1 AND endpoint_id = $2 AND org_id = $3 AND status <> 'pending'
    RETURNING delivery_id
)
SELECT delivery_id, pg_notify('ledger_webhook_deliveries', '') FROM retried
