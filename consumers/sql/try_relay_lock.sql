-- One active relay per name across every process: a session lock on the relay's own
-- connection, released when that connection ends (so a dead relay frees it at once).
SELECT pg_try_advisory_lock(hashtextextended('ledger.relay.' || $1, 0))
