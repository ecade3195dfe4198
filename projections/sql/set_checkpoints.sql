-- Set checkpoints outright ($1 names, $2 positions): a rebuild that swapped its tables
-- in, under the projections' locks. A projector that owned one before finds it moved and
-- starts again from here.
INSERT INTO projection_checkpoints (name, position)
SELECT * FROM unnest($1::text[], $2::bigint[])
ON CONFLICT (name) DO UPDATE SET position = excluded.position, updated_at = now()
