-- The request failed: forget the key so a corrected retry is carried out.
DELETE FROM idempotency_records WHERE org_id = $1 AND idempotency_key = $2 AND status IS NULL
