-- `ledger relay --from POSITION`: publish again from just after POSITION.
INSERT INTO relay_checkpoints (name, position) VALUES ($1, $2)
ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = now()
