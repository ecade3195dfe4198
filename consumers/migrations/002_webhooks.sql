-- Webhooks (DESIGN 8): the endpoints an organization registers, the deliveries the emitter
-- records for them, every attempt to send one, and the small per-item state `stock.low`
-- needs.

-- A registered webhook endpoint: a URL, the webhook event names it wants, its secret.
CREATE TABLE webhook_endpoints (
    endpoint_id     bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    org_id          bigint NOT NULL REFERENCES organizations,
    url             text NOT NULL,
    events          text[] NOT NULL,          -- webhook event names, or '*'
    description     text,
    -- In clear: signing needs the secret itself (unlike API keys, which are only compared).
    secret          text NOT NULL,
    -- The secret before the last rotation, still signed with until it expires.
    previous_secret text,
    previous_secret_expires_at timestamptz,
    enabled         boolean NOT NULL DEFAULT true,
    disabled_at     timestamptz,
    disabled_reason text,
    -- The first failed attempt of the current run of failures; NULL after a success.
    failing_since   timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_org_idx ON webhook_endpoints (org_id, endpoint_id);

-- One webhook event for one endpoint. The id derives from (endpoint, ledger event, name),
-- so an event handled twice records it once; it is the same on every attempt.
CREATE TABLE webhook_deliveries (
    delivery_id     uuid PRIMARY KEY,
    endpoint_id     bigint NOT NULL REFERENCES webhook_endpoints ON DELETE CASCADE,
    org_id          bigint NOT NULL,
    event_name      text NOT NULL,
    event_id        uuid,                     -- NULL for a ping
    position        bigint,                   -- NULL for a ping
    recorded_at     timestamptz,              -- the event's; the payload's timestamp
    payload         bytea NOT NULL,           -- the exact body: every attempt signs the same bytes
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        integer NOT NULL DEFAULT 0,
    max_attempts    integer NOT NULL,         -- the retry schedule's length; one more on a retry by hand
    -- When a pending delivery is next due; moved ahead while an attempt is in flight
    -- (a lease: a deliverer that dies mid-attempt frees it when this passes).
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    delivered_at    timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now()
);
-- The deliverers' claim: each endpoint's due deliveries, oldest first.
CREATE INDEX webhook_deliveries_due_idx ON webhook_deliveries (endpoint_id, next_attempt_at)
    WHERE status = 'pending';
-- GET /webhooks/{id}/deliveries, newest first.
CREATE INDEX webhook_deliveries_endpoint_idx ON webhook_deliveries (endpoint_id, created_at DESC);

-- Every HTTP attempt of a delivery, as it went.
CREATE TABLE webhook_attempts (
    delivery_id     uuid NOT NULL REFERENCES webhook_deliveries ON DELETE CASCADE,
    attempt         integer NOT NULL,
    attempted_at    timestamptz NOT NULL,
    status_code     integer,                  -- NULL when no response came (timeout, refused, ...)
    error           text,
    duration_ms     double precision NOT NULL,
    PRIMARY KEY (delivery_id, attempt)
);

-- What `stock.low` needs per item, folded from the events in order: the total on hand,
-- the threshold, and whether the item is low now (so it fires once per crossing).
-- `position` is the last event applied: a redelivered event is not applied twice.
CREATE TABLE webhook_item_levels (
    org_id           bigint NOT NULL,
    item_id          bigint NOT NULL,
    quantity_on_hand bigint NOT NULL,
    min_stock_level  bigint NOT NULL,
    low              boolean NOT NULL,
    part_number      text,
    part_name        text,
    position         bigint NOT NULL,
    PRIMARY KEY (org_id, item_id)
);

-- How far the emitter has handled the LEDGER stream: the JetStream sequence it resumes
-- after, and the event it held there (to notice a stream that was rebuilt).
CREATE TABLE webhook_emitter_checkpoints (
    name            text PRIMARY KEY,
    stream_sequence bigint NOT NULL,
    event_id        uuid,
    position        bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now()
);
