-- The indexes of a read-model table ($1, qualified), to give a rebuilt copy the same ones
-- under the same names: constraint-backed ones (primary keys) as constraints.
SELECT i.relname AS name, pg_get_indexdef(x.indexrelid) AS definition,
       c.conname IS NOT NULL AS is_constraint, pg_get_constraintdef(c.oid) AS constraint_definition
FROM pg_index x
JOIN pg_class i ON i.oid = x.indexrelid
LEFT JOIN pg_constraint c ON c.conindid = x.indexrelid AND c.conrelid = x.indrelid
WHERE x.indrelid = $1::regclass
ORDER BY i.relname
