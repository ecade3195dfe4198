-- Read models: pure functions of the ledger, kept current by projectors.
--
-- Their tables live in the PostgreSQL schema `projections`, so a rebuild can create fresh
-- copies elsewhere (`CREATE TABLE fresh.items (LIKE projections.items INCLUDING ALL)`),
-- fill them from position 0 and swap them in. Checkpoints and dead letters are not read
-- models (they say how far each projection got) and stay in the public schema.

CREATE TABLE projection_checkpoints (
    name        text PRIMARY KEY,           -- the projection's name (and its lock key)
    position    bigint NOT NULL DEFAULT 0,  -- every event up to here is applied
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- An event a projection could not apply. The projection's checkpoint stays below it until
-- it applies (after a fix and a restart); the row stays as a record either way.
CREATE TABLE projection_dead_letters (
    projection   text NOT NULL,
    position     bigint NOT NULL,
    event_id     uuid NOT NULL,
    error        text NOT NULL,
    attempts     integer NOT NULL DEFAULT 1,
    recorded_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (projection, position)
);

CREATE SCHEMA projections;

-- Quantities that move with every stock event (quantity_on_hand, quantity, reserved) are
-- in no index, and the tables leave room on each page (fillfactor), so the per-batch
-- update of a hot row is a HOT update that touches no index.

CREATE TABLE projections.items (
    org_id            bigint NOT NULL,
    item_id           bigint NOT NULL,
    part_number       text NOT NULL,
    part_name         text NOT NULL,
    description       text,
    category          text,
    serial_number     text,
    quantity_on_hand  bigint NOT NULL DEFAULT 0,  -- over every location
    min_stock_level   bigint NOT NULL DEFAULT 0,
    reorder_quantity  bigint NOT NULL DEFAULT 0,
    cost_per_unit     double precision,
    price_per_unit    double precision,
    supplier_id       bigint,
    deleted           boolean NOT NULL DEFAULT false,  -- archived: left out of lists
    created_at        timestamptz NOT NULL,  -- recorded_at of ItemCreated
    updated_at        timestamptz NOT NULL,  -- of the last ItemCreated/ItemUpdated/ItemDeleted
    PRIMARY KEY (org_id, item_id)
) WITH (fillfactor = 80);
CREATE INDEX items_category_idx ON projections.items (org_id, category, item_id);

CREATE TABLE projections.stock (
    org_id        bigint NOT NULL,
    item_id       bigint NOT NULL,
    location_id   bigint NOT NULL,
    quantity      bigint NOT NULL,
    reserved      bigint NOT NULL,
    last_updated  timestamptz NOT NULL,  -- recorded_at of the last movement here
    PRIMARY KEY (org_id, item_id, location_id)
) WITH (fillfactor = 80);
CREATE INDEX stock_location_idx ON projections.stock (org_id, location_id, item_id);

CREATE TABLE projections.job_holdings (
    org_id      bigint NOT NULL,
    job_id      bigint NOT NULL,
    item_id     bigint NOT NULL,
    location_id bigint NOT NULL,
    reserved    bigint NOT NULL,  -- held now
    consumed    bigint NOT NULL,  -- used by Job_complete, in all
    released    bigint NOT NULL,  -- given back, in all (requested, expired or completed)
    expires_at  timestamptz,      -- of the latest Reserve here; meaningful while reserved > 0
    PRIMARY KEY (org_id, job_id, item_id, location_id)
) WITH (fillfactor = 80);

-- One row per stock event; names of locations are joined in when read (current names).
CREATE TABLE projections.transactions (
    position             bigint PRIMARY KEY,  -- the event's ledger position: the transaction id
    org_id               bigint NOT NULL,
    item_id              bigint NOT NULL,
    transaction_type     text NOT NULL,
    quantity             bigint NOT NULL,     -- signed, see projections/movement.py
    location_id          bigint NOT NULL,
    related_location_id  bigint,              -- the other side of a transfer
    job_id               bigint,
    user_name            text,
    notes                text,
    recorded_at          timestamptz NOT NULL
);
CREATE INDEX transactions_item_idx ON projections.transactions (org_id, item_id, position);

CREATE TABLE projections.locations (
    org_id         bigint NOT NULL,
    location_id    bigint NOT NULL,
    location_name  text NOT NULL,
    location_type  text NOT NULL,
    address        text,
    city           text,
    state          text,
    zip            text,
    is_active      boolean NOT NULL,
    created_at     timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (org_id, location_id)
);
