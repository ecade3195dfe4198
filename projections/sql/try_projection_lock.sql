-- Ownership of one projection: a session advisory lock, held by the owner's dedicated
-- connection until it unlocks or the session ends (a dead owner's lock goes with it).
SELECT pg_try_advisory_lock($1::bigint)
