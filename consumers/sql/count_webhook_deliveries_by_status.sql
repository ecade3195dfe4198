-- For /metrics: webhook deliveries by outcome (pending, delivered, failed), every process's.
SELECT status, count(*) AS deliveries FROM webhook_deliveries GROUP BY status
