-- Record a command's (or a group's) events with the stream heads and write-model rows
-- they change, in one call of append_events (ledger/migrations/002_append_events.sql),
-- by named notation. Parameters, in the order ledger/appender.py's AppendRows binds them:
-- the organization; the events (id, stream, version, type, data, metadata, recorded_at,
-- prev_hash, hash); the new stream heads (stream, version, last hash); the changed stock
-- rows (item, location, quantity, reserved); the changed holds (item, location, job,
-- quantity, 0 for gone, expires_at); the changed items (id, part number, attributes,
-- deleted) and locations (id, attributes).
SELECT append_events(
    p_org_id => $1,
    e_ids => $2, e_streams => $3, e_versions => $4, e_types => $5, e_data => $6,
    e_metadata => $7, e_recorded_at => $8, e_prev_hashes => $9, e_hashes => $10,
    h_streams => $11, h_versions => $12, h_hashes => $13,
    s_items => $14, s_locations => $15, s_quantities => $16, s_reserved => $17,
    r_items => $18, r_locations => $19, r_jobs => $20, r_quantities => $21, r_expires_at => $22,
    i_ids => $23, i_part_numbers => $24, i_attributes => $25, i_deleted => $26,
    l_ids => $27, l_attributes => $28)
