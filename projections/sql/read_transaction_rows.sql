-- The transaction history rows in a range of positions ($1 < position <= $2), of one
-- organization or all ($3 NULL), for verify.
SELECT * FROM {schema}.transactions
WHERE position > $1 AND position <= $2 AND ($3::bigint IS NULL OR org_id = $3)
ORDER BY position
