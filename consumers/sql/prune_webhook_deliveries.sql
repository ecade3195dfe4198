-- Forget deliveries settled (delivered or failed) more than $1 seconds ago, with their
-- attempts, a bounded batch at a time so no statement holds locks for long.
DELETE FROM webhook_deliveries
WHERE delivery_id IN (
    SELECT delivery_id FROM webhook_deliveries
    WHERE status <> 'pending' AND created_at < now() - $1 * interval '1 second'
    LIMIT 5000
)
