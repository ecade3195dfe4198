-- The session holding a projection's advisory lock ($1: classid, $2: objid of its 64-bit
-- key, as pg_locks splits it), in this database; none if the projection has no owner.
SELECT l.pid
FROM pg_locks l
WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
  AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid
  AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
