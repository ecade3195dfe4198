-- What a job ($1 org_id, $2 job_id) holds and has used, per (item, location), with the
-- items' and locations' current names. No row: the job never reserved or used anything.
SELECT h.item_id, i.part_number, i.part_name, h.location_id, l.location_name,
       h.reserved AS reserved_quantity, h.consumed AS consumed_quantity,
       h.released AS released_quantity,
       CASE WHEN h.reserved > 0 THEN h.expires_at END AS expires_at
FROM {schema}.job_holdings h
LEFT JOIN {schema}.items i ON i.org_id = h.org_id AND i.item_id = h.item_id
LEFT JOIN {schema}.locations l ON l.org_id = h.org_id AND l.location_id = h.location_id
WHERE h.org_id = $1 AND h.job_id = $2
ORDER BY h.item_id, h.location_id
