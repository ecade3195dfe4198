-- Every projection's progress, for /readyz and metrics: its checkpoint, the ledger head,
-- its dead letters, and the position it is stuck at (a dead letter it has not passed).
SELECT c.name,
       c.position,
       c.updated_at,
       (SELECT coalesce(max(e.position), 0) FROM events e) AS head,
       count(d.position) AS dead_letters,
       min(d.position) FILTER (WHERE d.position > c.position) AS stuck_at
FROM projection_checkpoints c
LEFT JOIN projection_dead_letters d ON d.projection = c.name
GROUP BY c.name
ORDER BY c.name
