-- Moves only from where its owner last saw it: a second relay cannot move it under us.
UPDATE relay_checkpoints SET position = $3, updated_at = now()
WHERE name = $1 AND position = $2
RETURNING position
