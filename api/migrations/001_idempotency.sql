-- The first response to every POST that carried an Idempotency-Key, to replay it.
CREATE TABLE idempotency_records (
    org_id           bigint NOT NULL,
    idempotency_key  text NOT NULL,
    fingerprint      bytea NOT NULL,        -- sha256 of method, path, query and body
    status           integer,               -- NULL while the first request is in flight
    headers          jsonb,
    body             bytea,
    created_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (org_id, idempotency_key)
);
CREATE INDEX idempotency_records_created_idx ON idempotency_records (created_at);
