-- The first staged event whose type a rebuild does not know ($1: the known ones). A set-based
-- rebuild cannot park it as a projector would, so the rebuild stops before swapping anything.
SELECT position, type FROM {schema}.rebuild_stage WHERE type <> ALL ($1::text[]) ORDER BY position LIMIT 1
