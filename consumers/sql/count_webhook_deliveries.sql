SELECT count(*) FROM webhook_deliveries
WHERE endpoint_id = $1 AND org_id = $2 AND ($3::text IS NULL OR status = $3)
