-- The checkpoint a new owner of projection $1 resumes from; a projection never run before
-- gets its row here and starts at 0. (The outer SELECT cannot see the row the CTE inserts,
-- so exactly one branch answers.)
WITH created AS (
    INSERT INTO projection_checkpoints (name) VALUES ($1)
    ON CONFLICT (name) DO NOTHING
    RETURNING position
)
SELECT position FROM created
UNION ALL
SELECT position FROM projection_checkpoints WHERE name = $1
LIMIT 1
