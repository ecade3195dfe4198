-- Job holdings of the staged chunk, merged as apply_job_holdings.sql merges a batch: the
-- staged changes are added; an event that renews the hold (a Reserve) sets expires_at to
-- that of the chunk's last one.
MERGE INTO {schema}.job_holdings AS h
USING (
    SELECT org_id, job_id, item_id, location_id,
           sum(reserved_change)::bigint AS reserved,
           sum(consumed)::bigint AS consumed,
           sum(released)::bigint AS released,
           bool_or(renews) AS reserved_again,
           (array_agg(expires_at ORDER BY position DESC) FILTER (WHERE renews))[1] AS expires_at
    FROM {schema}.rebuild_stage
    WHERE job_id IS NOT NULL AND signed_quantity IS NOT NULL  -- the stock events of a job
    GROUP BY org_id, job_id, item_id, location_id
) AS u
ON h.org_id = u.org_id AND h.job_id = u.job_id AND h.item_id = u.item_id AND h.location_id = u.location_id
WHEN MATCHED THEN UPDATE SET
    reserved = h.reserved + u.reserved,
    consumed = h.consumed + u.consumed,
    released = h.released + u.released,
    expires_at = CASE WHEN u.reserved_again THEN u.expires_at ELSE h.expires_at END
WHEN NOT MATCHED THEN INSERT (org_id, job_id, item_id, location_id, reserved, consumed, released, expires_at)
VALUES (u.org_id, u.job_id, u.item_id, u.location_id, u.reserved, u.consumed, u.released, u.expires_at)
