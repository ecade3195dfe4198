-- Due deliveries for a deliverer: per enabled endpoint at most $3 less what this process
-- already has in flight to it ($1: endpoint ids, $2: their counts), $4 in all, oldest
-- first. Taking a few per endpoint, never "the oldest N overall", is what keeps a dead
-- endpoint's backlog from filling a claim and delaying every other endpoint.
-- SKIP LOCKED lets deliverers in several processes claim side by side. The claim is a
-- lease, not a lock held across the HTTP call (a transaction open that long would hold
-- back every ledger reader): next_attempt_at moves $5 seconds ahead, so nobody claims it
-- meanwhile, and it falls due again by itself if this process dies mid-attempt.
WITH claimable AS (
    SELECT due.delivery_id
    FROM webhook_endpoints e
    LEFT JOIN unnest($1::bigint[], $2::int[]) AS busy(endpoint_id, sending) ON busy.endpoint_id = e.endpoint_id
    CROSS JOIN LATERAL (
        SELECT d.delivery_id, d.next_attempt_at
        FROM webhook_deliveries d
        WHERE d.endpoint_id = e.endpoint_id AND d.status = 'pending' AND d.next_attempt_at <= now()
        ORDER BY d.next_attempt_at
        LIMIT greatest($3 - coalesce(busy.sending, 0), 0)
        FOR UPDATE OF d SKIP LOCKED
    ) due
    WHERE e.enabled
    ORDER BY due.next_attempt_at
    LIMIT $4
)
UPDATE webhook_deliveries d
SET next_attempt_at = now() + $5 * interval '1 second'
FROM claimable c, webhook_endpoints e
WHERE d.delivery_id = c.delivery_id AND e.endpoint_id = d.endpoint_id
RETURNING d.delivery_id, d.endpoint_id, d.event_name, d.payload, d.attempts, d.max_attempts,
          e.url, e.secret,
          CASE WHEN e.previous_secret_expires_at > now() THEN e.previous_secret END AS previous_secret
