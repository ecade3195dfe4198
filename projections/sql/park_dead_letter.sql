-- An event projection $1 could not apply. Parked again after a restart, it counts attempts.
INSERT INTO projection_dead_letters (projection, position, event_id, error)
VALUES ($1, $2, $3, $4)
ON CONFLICT (projection, position) DO UPDATE
    SET error = excluded.error,
        attempts = projection_dead_letters.attempts + 1,
        recorded_at = now()
