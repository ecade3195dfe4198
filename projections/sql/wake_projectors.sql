-- A read is waiting for the read models: projectors idling between polls poll at once.
SELECT pg_notify('ledger_wake', '')
