-- Where some projections stand ($1 names); a projection never run has no row.
SELECT name, position FROM projection_checkpoints WHERE name = ANY ($1::text[])
