-- One command, one round trip: its events, the new stream heads and the write-model rows
-- in a single call, so the append and the state it implies commit (or fail) together.
--
-- Conflicts are found by the schema, not by checks here: a stream version already taken
-- raises unique_violation on events_stream_version_key (someone appended first), an event
-- id already recorded raises it on events_event_id_key (the command was already recorded).
-- No EXCEPTION block on purpose: it would open a subtransaction, and readers rely on
-- top-level transaction ids (see read_horizon.sql).
CREATE FUNCTION append_events(
    p_org_id        bigint,
    e_ids           uuid[],
    e_streams       text[],
    e_versions      integer[],
    e_types         text[],
    e_data          jsonb[],
    e_metadata      jsonb[],
    e_recorded_at   timestamptz[],
    e_prev_hashes   text[],
    e_hashes        text[],
    h_streams       text[],
    h_versions      integer[],
    h_hashes        text[],
    s_items         bigint[],
    s_locations     bigint[],
    s_quantities    bigint[],
    s_reserved      bigint[],
    r_items         bigint[],
    r_locations     bigint[],
    r_jobs          bigint[],
    r_quantities    bigint[],   -- 0: the hold is gone
    r_expires_at    timestamptz[],
    i_ids           bigint[],
    i_part_numbers  text[],
    i_attributes    jsonb[],
    i_deleted       boolean[],
    l_ids           bigint[],
    l_attributes    jsonb[]
) RETURNS bigint[] LANGUAGE plpgsql AS $$
DECLARE
    positions bigint[];
BEGIN
    -- Take the transaction id before any position is drawn from the sequence: a reader
    -- that sees this transaction neither committed nor in its snapshot's in-progress
    -- list can then be sure it holds no position below what the reader has seen.
    PERFORM pg_current_xact_id();

    -- Stream heads first, in stream order: the row locks taken here queue two commands
    -- on shared streams in the same order, so multi-stream commands cannot deadlock on
    -- the rows written after them. (If the head moved meanwhile, the event insert below
    -- finds the version taken and the whole call fails.)
    INSERT INTO streams (org_id, stream, version, last_hash)
    SELECT p_org_id, h.stream, h.version, h.hash
    FROM unnest(h_streams, h_versions, h_hashes) AS h(stream, version, hash)
    ORDER BY h.stream
    ON CONFLICT (org_id, stream) DO UPDATE
        SET version = excluded.version, last_hash = excluded.last_hash;

    WITH inserted AS (
        INSERT INTO events (event_id, org_id, stream, version, type, data, metadata,
                            recorded_at, prev_hash, hash)
        SELECT e.id, p_org_id, e.stream, e.version, e.type, e.data, e.metadata,
               e.recorded_at, e.prev_hash, e.hash
        FROM unnest(e_ids, e_streams, e_versions, e_types, e_data, e_metadata,
                    e_recorded_at, e_prev_hashes, e_hashes)
             WITH ORDINALITY AS e(id, stream, version, type, data, metadata,
                                  recorded_at, prev_hash, hash, n)
        ORDER BY e.n
        RETURNING position
    )
    SELECT array_agg(position ORDER BY position) INTO positions FROM inserted;

    INSERT INTO item_state (item_id, org_id, part_number, attributes, deleted)
    SELECT i.id, p_org_id, i.part_number, i.attributes, i.deleted
    FROM unnest(i_ids, i_part_numbers, i_attributes, i_deleted) AS i(id, part_number, attributes, deleted)
    ON CONFLICT (item_id) DO UPDATE
        SET part_number = excluded.part_number, attributes = excluded.attributes,
            deleted = excluded.deleted;

    INSERT INTO location_state (location_id, org_id, attributes)
    SELECT l.id, p_org_id, l.attributes
    FROM unnest(l_ids, l_attributes) AS l(id, attributes)
    ON CONFLICT (location_id) DO UPDATE SET attributes = excluded.attributes;

    INSERT INTO stock_state (item_id, location_id, org_id, quantity, reserved)
    SELECT s.item_id, s.location_id, p_org_id, s.quantity, s.reserved
    FROM unnest(s_items, s_locations, s_quantities, s_reserved)
         AS s(item_id, location_id, quantity, reserved)
    ON CONFLICT (item_id, location_id) DO UPDATE
        SET quantity = excluded.quantity, reserved = excluded.reserved;

    DELETE FROM reservation_state r
    USING unnest(r_items, r_locations, r_jobs, r_quantities) AS g(item_id, location_id, job_id, quantity)
    WHERE g.quantity = 0
      AND (r.item_id, r.location_id, r.job_id) = (g.item_id, g.location_id, g.job_id);

    INSERT INTO reservation_state (item_id, location_id, job_id, org_id, quantity, expires_at)
    SELECT h.item_id, h.location_id, h.job_id, p_org_id, h.quantity, h.expires_at
    FROM unnest(r_items, r_locations, r_jobs, r_quantities, r_expires_at)
         AS h(item_id, location_id, job_id, quantity, expires_at)
    WHERE h.quantity > 0
    ON CONFLICT (item_id, location_id, job_id) DO UPDATE
        SET quantity = excluded.quantity, expires_at = excluded.expires_at;

    RETURN positions;
END $$;
