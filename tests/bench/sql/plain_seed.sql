-- The same items and locations as the ledger's seed ($1 first item id, $2 items, $3 the
-- first of two consecutive location ids), each with plenty of stock.
INSERT INTO plain_stock (item_id, location_id, quantity)
SELECT item_id, location_id, 1000000000000
FROM generate_series($1::bigint, $1::bigint + $2::bigint - 1) AS item_id,
     generate_series($3::bigint, $3::bigint + 1) AS location_id
