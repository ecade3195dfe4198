-- A stream's head in one organization: no row if the organization has no such stream.
SELECT version, last_hash FROM streams WHERE org_id = $1 AND stream = $2
