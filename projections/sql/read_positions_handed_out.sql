-- The highest position ever handed out: the bound for a min_position a caller asks for.
SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM event_position_seq
