-- One batch of job holdings, one row per (job, item, location) the batch touched: changes
-- of reserved, consumed and released are added; a Reserve in the batch (reserved_again)
-- sets expires_at to that of the batch's last Reserve there, as the write model renews a
-- hold's expiry.
MERGE INTO {schema}.job_holdings AS h
USING (
    SELECT *
    FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[], $5::bigint[], $6::bigint[],
                $7::bigint[], $8::boolean[], $9::timestamptz[])
         AS u(org_id, job_id, item_id, location_id, reserved, consumed, released,
              reserved_again, expires_at)
) AS u
ON h.org_id = u.org_id AND h.job_id = u.job_id AND h.item_id = u.item_id AND h.location_id = u.location_id
WHEN MATCHED THEN UPDATE SET
    reserved = h.reserved + u.reserved,
    consumed = h.consumed + u.consumed,
    released = h.released + u.released,
    expires_at = CASE WHEN u.reserved_again THEN u.expires_at ELSE h.expires_at END
WHEN NOT MATCHED THEN INSERT (org_id, job_id, item_id, location_id, reserved, consumed, released, expires_at)
VALUES (u.org_id, u.job_id, u.item_id, u.location_id, u.reserved, u.consumed, u.released, u.expires_at)
