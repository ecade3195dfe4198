-- Items named by part number (batch lines may do so): $1 org_id, $2 part numbers.
SELECT part_number, item_id FROM item_state
WHERE org_id = $1 AND part_number = ANY ($2::text[]) AND NOT deleted
