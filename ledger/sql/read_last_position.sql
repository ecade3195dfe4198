-- The highest position handed out so far (an upper bound on any position a client holds).
SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM event_position_seq
