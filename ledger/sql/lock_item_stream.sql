-- Hold an item's stream still until commit: every append to the item updates this row, so
-- nothing changes the item between here and the end of the transaction. Returns its version.
SELECT version FROM streams WHERE org_id = $1 AND stream = $2 FOR UPDATE
