SELECT d.delivery_id, d.status, e.enabled
FROM webhook_deliveries d JOIN webhook_endpoints e USING (endpoint_id)
WHERE d.delivery_id = $1 AND d.endpoint_id = $2 AND d.org_id = $3
