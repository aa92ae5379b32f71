-- Outbox rows the broker will never take (larger than their topic's largest record), moved
-- out of the outbox by the relay with the reason, so the rows behind them go on. Nothing
-- is deleted: the platform team reads them here.
CREATE TABLE outbox_parked (
    id            bigint      PRIMARY KEY,
    event_id      uuid        NOT NULL UNIQUE,
    topic         text        NOT NULL,
    key           bytea,
    value         bytea       NOT NULL,
    headers       jsonb       NOT NULL,
    created_at    timestamptz NOT NULL,
    parked_at     timestamptz NOT NULL DEFAULT now(),
    reason        text        NOT NULL
);
