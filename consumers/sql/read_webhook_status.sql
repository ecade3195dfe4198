-- For /metrics and /readyz: what webhooks owe, and how far behind the emitter is.
SELECT
    (SELECT count(*) FROM webhook_deliveries WHERE status = 'pending') AS pending,
    (SELECT coalesce(extract(epoch FROM now() - min(d.next_attempt_at)), 0)::float8
       FROM webhook_deliveries d JOIN webhook_endpoints e USING (endpoint_id)
      WHERE d.status = 'pending' AND e.enabled AND d.next_attempt_at < now()) AS oldest_due_seconds,
    (SELECT count(*) FROM webhook_endpoints WHERE NOT enabled) AS disabled_endpoints,
    greatest((SELECT coalesce(max(position), 0) FROM events)
             - (SELECT coalesce(max(position), 0) FROM webhook_emitter_checkpoints), 0) AS emitter_lag
