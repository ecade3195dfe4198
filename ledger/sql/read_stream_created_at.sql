-- When a stream began: the recorded_at of its first event.
SELECT recorded_at FROM events WHERE org_id = $1 AND stream = $2 AND version = 1
