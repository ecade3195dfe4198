-- Job holdings of the staged chunk, merged as apply_job_holdings.sql merges a batch: the
-- changes are added; a Reserve in the chunk sets expires_at to that of its last Reserve.
MERGE INTO {schema}.job_holdings AS h
USING (
    SELECT org_id, job_id, item_id, location_id,
           sum(reserved_change)::bigint AS reserved,
           coalesce(sum(quantity) FILTER (WHERE type = 'Job_complete'), 0)::bigint AS consumed,
           coalesce(sum(quantity) FILTER (WHERE type = 'Release'), 0)::bigint AS released,
           bool_or(type = 'Reserve') AS reserved_again,
           (array_agg(expires_at ORDER BY position DESC) FILTER (WHERE type = 'Reserve'))[1] AS expires_at
    FROM {schema}.replay_stage
    WHERE job_id IS NOT NULL
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
