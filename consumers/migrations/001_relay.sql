-- How far the relay has published the ledger to NATS (acknowledged by JetStream).
CREATE TABLE relay_checkpoints (
    name        text PRIMARY KEY,
    position    bigint NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
