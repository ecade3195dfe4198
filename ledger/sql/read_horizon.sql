-- One poll of a ledger reader. Positions come from a sequence, so a transaction can hold
-- a lower position than one already committed and still be in flight. The highest
-- position visible now is safe to read up to once every transaction that was in progress
-- when it was taken has finished: any transaction that starts later draws a higher
-- position (append_events takes its transaction id before drawing one).
-- $1: the in-progress transaction ids of the previous poll, as text.
SELECT (SELECT coalesce(max(position), 0) FROM events) AS visible_max,
       pg_current_snapshot()::text AS snapshot,
       (SELECT coalesce(bool_and(pg_visible_in_snapshot(x::xid8, pg_current_snapshot())), true)
        FROM unnest($1::text[]) AS x) AS previous_finished
