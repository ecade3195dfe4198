-- Take a lease ($1: its 64-bit key, ledger/lease.py): a session advisory lock, held by
-- the owner's dedicated connection until it gives it back or its session ends.
SELECT pg_try_advisory_lock($1::bigint)
