-- A batch's deliveries; one already recorded (same id: the event was handled before) is
-- left alone. Deliverers are woken once for the batch, at commit.
WITH recorded AS (
    INSERT INTO webhook_deliveries (delivery_id, endpoint_id, org_id, event_name, event_id, position,
                                    recorded_at, payload, max_attempts, next_attempt_at)
    SELECT d.*, $9, now() + $10 * interval '1 second'
    FROM unnest($1::uuid[], $2::bigint[], $3::bigint[], $4::text[], $5::uuid[], $6::bigint[],
                $7::timestamptz[], $8::bytea[]) AS d
    ON CONFLICT (delivery_id) DO NOTHING
    RETURNING 1
)
SELECT count(*) AS recorded,
       CASE WHEN count(*) > 0 THEN pg_notify('ledger_webhook_deliveries', '') END AS notified
FROM recorded
