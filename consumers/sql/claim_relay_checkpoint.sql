INSERT INTO relay_checkpoints (name, position) VALUES ($1, 0)
ON CONFLICT (name) DO UPDATE SET name = excluded.name
RETURNING position
