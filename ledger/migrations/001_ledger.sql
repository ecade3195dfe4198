-- The ledger: organizations and keys, the append-only event table, stream heads, and the
-- write model (the small state a command reads to decide, kept in the same transaction
-- as every append).

CREATE TABLE organizations (
    org_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name        text NOT NULL CONSTRAINT organizations_name_key UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_keys (
    key_id       bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id       bigint NOT NULL REFERENCES organizations,
    name         text,
    key_prefix   text NOT NULL,           -- the first characters, to recognise a key in lists
    key_hash     bytea NOT NULL CONSTRAINT api_keys_key_hash_key UNIQUE,  -- sha256 of the key
    scopes       text[] NOT NULL,
    allowed_ips  cidr[],                  -- NULL: any address
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_keys_org_idx ON api_keys (org_id);

-- CACHE 1 (the default) matters: readers take `last_value` as an exact upper bound of
-- every position handed out so far (see read_horizon.sql).
CREATE SEQUENCE event_position_seq AS bigint CACHE 1;

CREATE TABLE events (
    position     bigint PRIMARY KEY DEFAULT nextval('event_position_seq'),
    event_id     uuid NOT NULL CONSTRAINT events_event_id_key UNIQUE,
    org_id       bigint NOT NULL REFERENCES organizations,
    stream       text NOT NULL,
    version      integer NOT NULL CHECK (version >= 1),
    type         text NOT NULL,
    data         jsonb NOT NULL,
    metadata     jsonb NOT NULL,
    recorded_at  timestamptz NOT NULL,
    prev_hash    text NOT NULL,
    hash         text NOT NULL,
    CONSTRAINT events_stream_version_key UNIQUE (org_id, stream, version)
);
ALTER SEQUENCE event_position_seq OWNED BY events.position;
CREATE INDEX events_org_position_idx ON events (org_id, position);

-- Nothing is ever updated or deleted in the ledger. (A superuser can still disable the
-- trigger; `ledger verify` is what catches an edit that got through.)
CREATE FUNCTION events_are_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the ledger is append-only: % on events is not allowed', TG_OP
        USING ERRCODE = 'restrict_violation';
END $$;
CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION events_are_immutable();
CREATE TRIGGER events_no_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION events_are_immutable();

-- The head of every stream: its version and the hash of its last event, so an append
-- chains without reading the previous event.
CREATE TABLE streams (
    org_id     bigint NOT NULL,
    stream     text NOT NULL,
    version    integer NOT NULL,
    last_hash  text NOT NULL,
    PRIMARY KEY (org_id, stream)
);

-- Write model. The CHECK constraints restate the invariants: if the decision logic ever
-- let a bad command through, the database still refuses to record it.
CREATE SEQUENCE item_id_seq AS bigint;
CREATE SEQUENCE location_id_seq AS bigint;

CREATE TABLE item_state (
    item_id      bigint PRIMARY KEY,
    org_id       bigint NOT NULL REFERENCES organizations,
    part_number  text NOT NULL,
    attributes   jsonb NOT NULL,
    deleted      boolean NOT NULL DEFAULT false
);
-- A part number is unique among an organization's items that are not archived.
CREATE UNIQUE INDEX item_state_part_number_key ON item_state (org_id, part_number) WHERE NOT deleted;

CREATE TABLE location_state (
    location_id  bigint PRIMARY KEY,
    org_id       bigint NOT NULL REFERENCES organizations,
    attributes   jsonb NOT NULL
);

CREATE TABLE stock_state (
    item_id      bigint NOT NULL,
    location_id  bigint NOT NULL,
    org_id       bigint NOT NULL,
    quantity     bigint NOT NULL CONSTRAINT stock_state_quantity_check CHECK (quantity >= 0),
    reserved     bigint NOT NULL CONSTRAINT stock_state_reserved_check CHECK (reserved >= 0 AND reserved <= quantity),
    PRIMARY KEY (item_id, location_id)
);

CREATE TABLE reservation_state (
    item_id      bigint NOT NULL,
    location_id  bigint NOT NULL,
    job_id       bigint NOT NULL,
    org_id       bigint NOT NULL,
    quantity     bigint NOT NULL CONSTRAINT reservation_state_quantity_check CHECK (quantity > 0),
    expires_at   timestamptz,
    PRIMARY KEY (item_id, location_id, job_id)
);
CREATE INDEX reservation_state_job_idx ON reservation_state (org_id, job_id);
CREATE INDEX reservation_state_expiry_idx ON reservation_state (expires_at) WHERE expires_at IS NOT NULL;
