-- One attempt as it went ($2 when, $3 status code, $4 error, $5 milliseconds, $6 success),
-- what follows from it, and the endpoint's next due delivery, in one round trip:
-- - the delivery is delivered, due again in $7 seconds, or failed ($7 NULL: its schedule
--   is used up);
-- - a success ends the endpoint's run of failures; a failure starts one, and an endpoint
--   whose run has lasted more than $8 seconds is disabled, saying why. The endpoint row is
--   written only when that changes something, so busy endpoints do not queue on it;
-- - when $9, the next due delivery of the same endpoint ($10) is claimed for the slot that
--   just finished, with a lease of $11 seconds (as claim_webhook_deliveries.sql does), so
--   a busy endpoint's slot goes on without a trip through the claim loop. Not if this
--   attempt just disabled the endpoint.
WITH attempt AS (
    INSERT INTO webhook_attempts (delivery_id, attempt, attempted_at, status_code, error, duration_ms)
    SELECT delivery_id, attempts + 1, $2, $3, $4, $5 FROM webhook_deliveries WHERE delivery_id = $1
    -- Two deliverers can hold the same delivery only if a lease ran out mid-attempt; the
    -- first to record it wins.
    ON CONFLICT DO NOTHING
    RETURNING delivery_id, attempt
), delivery AS (
    UPDATE webhook_deliveries d SET
        attempts = a.attempt,
        status = CASE WHEN $6 THEN 'delivered' WHEN $7::float8 IS NULL THEN 'failed' ELSE 'pending' END,
        delivered_at = CASE WHEN $6 THEN $2 ELSE d.delivered_at END,
        next_attempt_at = CASE WHEN $6 OR $7::float8 IS NULL THEN d.next_attempt_at
                               ELSE now() + $7::float8 * interval '1 second' END
    FROM attempt a
    WHERE d.delivery_id = a.delivery_id
    RETURNING d.endpoint_id
), endpoint AS (
    UPDATE webhook_endpoints e SET
        failing_since = CASE WHEN $6 THEN NULL ELSE coalesce(e.failing_since, $2) END,
        enabled = CASE WHEN NOT $6 AND e.failing_since < $2 - $8 * interval '1 second' THEN false ELSE e.enabled END,
        disabled_at = CASE WHEN $6 THEN e.disabled_at WHEN e.failing_since < $2 - $8 * interval '1 second'
                           THEN $2 ELSE e.disabled_at END,
        disabled_reason = CASE WHEN $6 THEN e.disabled_reason WHEN e.failing_since < $2 - $8 * interval '1 second'
                               THEN format('every attempt failed from %s to %s (last: %s)', e.failing_since, $2,
                                           coalesce($4::text, 'HTTP ' || $3::text))
                               ELSE e.disabled_reason END
    FROM delivery
    WHERE e.endpoint_id = delivery.endpoint_id
      AND (CASE WHEN $6 THEN e.failing_since IS NOT NULL
                ELSE e.failing_since IS NULL OR (e.enabled AND e.failing_since < $2 - $8 * interval '1 second') END)
    RETURNING e.enabled
), next AS (
    -- Every part of a statement sees the rows as they were before it: the delivery just
    -- attempted still has its lease ahead, so it is never its own next.
    SELECT d.delivery_id
    FROM webhook_deliveries d JOIN webhook_endpoints e USING (endpoint_id)
    WHERE $9 AND d.endpoint_id = $10 AND e.enabled AND coalesce((SELECT enabled FROM endpoint), true)
      AND d.status = 'pending' AND d.next_attempt_at <= now()
    ORDER BY d.next_attempt_at
    LIMIT 1
    FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
SET next_attempt_at = now() + $11 * interval '1 second'
FROM next, webhook_endpoints e
WHERE d.delivery_id = next.delivery_id AND e.endpoint_id = d.endpoint_id
RETURNING d.delivery_id, d.endpoint_id, d.event_name, d.payload, d.attempts, d.max_attempts,
          e.url, e.secret,
          CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS previous_secret
