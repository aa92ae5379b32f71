-- The outbox and the inbox every service keeps in its own schema.
-- search_path is set to the service's schema by the migration runner.

-- Events written in the same transaction as the state change they announce; the relay
-- publishes them in id order and stamps published_at.
CREATE TABLE outbox (
    id            bigserial PRIMARY KEY,
    event_id      uuid        NOT NULL UNIQUE,
    topic         text        NOT NULL,
    key           bytea,
    value         bytea       NOT NULL,
    headers       jsonb       NOT NULL DEFAULT '[]'::jsonb,
    created_at    timestamptz NOT NULL DEFAULT now(),
    published_at  timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;

-- One row per event a consumer has handled; inserted in the handler's transaction, so a
-- redelivered event finds its row and changes nothing.
CREATE TABLE processed_events (
    consumer      text        NOT NULL,
    event_id      uuid        NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (consumer, event_id)
);
