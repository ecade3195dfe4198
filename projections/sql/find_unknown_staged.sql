-- The first staged event whose type a replay does not know ($1: the known ones). A set-based
-- rebuild cannot park it as a projector would, so the replay stops before swapping anything.
SELECT position, type FROM {schema}.replay_stage WHERE type <> ALL ($1::text[]) ORDER BY position LIMIT 1
