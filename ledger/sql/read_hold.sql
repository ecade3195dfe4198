-- One job's hold at one place as it is now, and whether its expiry has passed.
SELECT quantity, expires_at, expires_at <= now() AS expired
FROM reservation_state
WHERE item_id = $1 AND location_id = $2 AND job_id = $3
