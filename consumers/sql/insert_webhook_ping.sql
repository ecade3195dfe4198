-- POST /webhooks/{id}/test: one attempt of a `ping`, due now.
WITH ping AS (
    INSERT INTO webhook_deliveries (delivery_id, endpoint_id, org_id, event_name, payload, max_attempts)
    VALUES ($1, $2, $3, 'ping', $4, 1)
    RETURNING delivery_id
)
SELECT delivery_id, pg_notify('ledger_webhook_deliveries', '') FROM ping
