-- The organization's last committed event ($1 org_id): every command answered before a
-- read arrived is at or below it (a backwards scan of events_org_position_idx: one entry).
SELECT coalesce(max(position), 0) FROM events WHERE org_id = $1
