-- The position of a stream's latest event (0 if it has none).
SELECT coalesce((SELECT position FROM events WHERE org_id = $1 AND stream = $2
                 ORDER BY version DESC LIMIT 1), 0)
