-- One active emitter across every process: it folds item levels in event order, which two
-- at once would not. A session lock on the emitter's own connection, released when that
-- connection ends (so a dead emitter frees it at once and a standby takes over).
SELECT pg_try_advisory_lock(hashtextextended('ledger.webhooks.emitter.' || $1, 0))
