-- A page of an endpoint's deliveries, newest first, each with every attempt in order.
SELECT d.delivery_id, d.event_name, d.status, d.event_id, d.position, d.payload, d.attempts,
       d.max_attempts, d.next_attempt_at, d.delivered_at, d.created_at,
       coalesce((SELECT json_agg(json_build_object(
                            'attempt', a.attempt, 'attempted_at', a.attempted_at,
                            'status_code', a.status_code, 'error', a.error,
                            'duration_ms', a.duration_ms) ORDER BY a.attempt)
                 FROM webhook_attempts a WHERE a.delivery_id = d.delivery_id), '[]') AS attempt_log
FROM webhook_deliveries d
WHERE d.endpoint_id = $1 AND d.org_id = $2 AND ($3::text IS NULL OR d.status = $3)
ORDER BY d.created_at DESC, d.position DESC NULLS LAST, d.event_name, d.delivery_id
LIMIT $4 OFFSET $5
