-- Every row of a read-model table ({table}), of one organization or all ($1 NULL), for verify.
SELECT * FROM {schema}.{table} WHERE $1::bigint IS NULL OR org_id = $1
