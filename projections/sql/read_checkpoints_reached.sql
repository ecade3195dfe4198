-- Whether every projection named in $1 (distinct names) has applied the ledger up to $2.
SELECT count(*) = cardinality($1::text[])
FROM projection_checkpoints
WHERE name = ANY ($1::text[]) AND position >= $2
