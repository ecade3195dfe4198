-- The transaction history of the staged events in positions $1 < position <= $2 (a chunk is
-- cut in parts that sessions insert side by side): one row per stock event, as
-- projections/transactions.py writes it (the signed quantity staged from ledger/effects.py;
-- an Adjust's reason as its notes; a Release the service made, without notes, says why).
INSERT INTO {schema}.transactions (position, org_id, item_id, transaction_type, quantity, location_id,
                                   related_location_id, job_id, user_name, notes, recorded_at)
SELECT position, org_id, item_id, type,
       signed_quantity,
       location_id, related_location_id, job_id, user_name,
       CASE WHEN type = 'Adjust' THEN reason
            WHEN type = 'Release' AND notes IS NULL AND coalesce(reason, 'requested') <> 'requested'
                THEN 'reservation ' || reason
            ELSE notes END,
       recorded_at
FROM {schema}.rebuild_stage
WHERE signed_quantity IS NOT NULL AND position > $1 AND position <= $2
