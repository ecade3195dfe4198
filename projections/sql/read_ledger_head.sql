-- What a read must wait for (api/consistency.py), in one round trip:
-- head: the organization's last committed event, so every command answered before this
--   read arrived (backwards scan of events_org_position_idx: one index entry);
-- reached: the position every read model has applied (NULL if one never ran);
-- handed_out: the highest position ever handed out, the bound for a min_position.
-- $1 org_id. {read_model_names} is filled in once, at start, with the read models'
-- names as literals: an array parameter would make PostgreSQL plan the statement anew
-- on every call (0.4 ms, eight times the execution).
SELECT (SELECT coalesce(max(position), 0) FROM events WHERE org_id = $1) AS head,
       (SELECT CASE WHEN count(*) = {read_model_count} THEN min(position) END
        FROM projection_checkpoints WHERE name IN ({read_model_names})) AS reached,
       (SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM event_position_seq) AS handed_out
