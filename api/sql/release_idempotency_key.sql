-- The request failed: forget the key so a corrected retry is carried out; only this
-- request's own claim ($3), never the claim of a retry that took the key over.
DELETE FROM idempotency_records WHERE org_id = $1 AND idempotency_key = $2 AND status IS NULL AND claim_token = $3
