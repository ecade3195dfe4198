-- Its deliveries and their attempts go with it (ON DELETE CASCADE).
DELETE FROM webhook_endpoints WHERE endpoint_id = $1 AND org_id = $2
RETURNING endpoint_id
