-- Who holds a key's claim (api/idempotency.py). A retry can then tell a request still
-- running from one that died with its database session (the server restarted or failed
-- over, or the API process died), and take the key over at once; and the late end of a
-- request whose claim was taken over cannot store or delete anything under the key.
ALTER TABLE idempotency_records
    ADD COLUMN claim_token uuid,               -- the claiming request's own
    ADD COLUMN claimed_by_pid integer,         -- the session that claimed: its backend's pid
    ADD COLUMN claimed_by_started timestamptz; -- and start (a pid is reused, never with the same start)
