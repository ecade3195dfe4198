-- The organization's id, creating it if new. (DO UPDATE, not DO NOTHING, so RETURNING
-- also answers when the row already exists.)
INSERT INTO organizations (name) VALUES ($1)
ON CONFLICT (name) DO UPDATE SET name = excluded.name
RETURNING org_id
