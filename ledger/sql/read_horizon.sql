-- One poll of a ledger reader. Positions come from a sequence, so a transaction can hold
-- a lower position than one already committed and still be in flight. The highest
-- position visible now is safe to read up to once every append that was in flight when
-- it was taken has finished: any append that starts later draws a higher position.
--
-- An append in flight is a transaction of this database that holds RowExclusiveLock on
-- `events` (taken before it draws a position, held until it ends) and has a transaction
-- id (append_events takes one first). Counting only those, not every transaction of the
-- server, keeps long transactions elsewhere (another database, a report) from holding
-- readers back. It is read after the statement's snapshot: an append missing from it has
-- already finished, so the events read that follows sees it.
-- $1: the appends in flight at the previous poll (transaction ids, comma-separated: as an
-- array parameter PostgreSQL planned the statement anew at every poll, twice its cost).
SELECT (SELECT coalesce(max(position), 0) FROM events) AS visible_max,
       ARRAY(SELECT DISTINCT a.backend_xid::text
             FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'relation' AND l.relation = 'events'::regclass
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND l.mode = 'RowExclusiveLock' AND a.backend_xid IS NOT NULL) AS in_flight,
       NOT EXISTS (SELECT 1 FROM pg_stat_activity
                   WHERE backend_xid IS NOT NULL AND backend_xid::text = ANY (string_to_array($1::text, ','))) AS previous_finished
