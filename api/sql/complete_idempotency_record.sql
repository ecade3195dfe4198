-- The request succeeded: keep its response for replays, while the claim is still its own
-- ($6): a request whose claim was taken over must not overwrite the one that took it.
UPDATE idempotency_records SET status = $3, headers = $4, body = $5
WHERE org_id = $1 AND idempotency_key = $2 AND claim_token = $6 AND status IS NULL
