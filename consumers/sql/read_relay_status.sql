SELECT r.name, r.position, r.updated_at,
       (SELECT coalesce(max(position), 0) FROM events) AS head
FROM relay_checkpoints r ORDER BY r.name
