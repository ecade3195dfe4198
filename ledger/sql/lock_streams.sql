-- Serializes this command with every other writer of the same streams until commit: the
-- fallback after an optimistic append lost a race. Sorted, so two multi-stream commands
-- always lock in the same order and cannot deadlock.
SELECT stream FROM streams WHERE org_id = $1 AND stream = ANY ($2::text[]) ORDER BY stream FOR UPDATE
