INSERT INTO webhook_emitter_checkpoints (name, stream_sequence, position) VALUES ($1, 0, 0)
ON CONFLICT (name) DO UPDATE SET name = excluded.name
RETURNING stream_sequence, event_id, position
