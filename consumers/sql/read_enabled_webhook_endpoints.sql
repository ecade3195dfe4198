-- The enabled endpoints of the organizations a batch of events belongs to.
SELECT endpoint_id, org_id, events, created_at
FROM webhook_endpoints
WHERE enabled AND org_id = ANY($1::bigint[])
