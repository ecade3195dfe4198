-- Written in the same transaction as the batch's deliveries and item levels.
UPDATE webhook_emitter_checkpoints
SET stream_sequence = $2, event_id = $3, position = $4, updated_at = now()
WHERE name = $1
