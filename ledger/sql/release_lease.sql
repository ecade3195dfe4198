-- Give a lease back ($1: its key); false if this session did not hold it.
SELECT pg_advisory_unlock($1::bigint)
