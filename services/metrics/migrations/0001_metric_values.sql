-- The projection of the metrics topics: the latest value per record key, which is what
-- the compacted topics keep. Rebuilt from the topics alone if it is ever lost.
CREATE TABLE metric_values (
    key           text PRIMARY KEY,
    topic         text NOT NULL,
    metric        text NOT NULL,
    dimensions    jsonb NOT NULL,
    granularity   text NOT NULL,
    window_start  timestamptz,
    window_end    timestamptz,
    window_label  text NOT NULL,
    value         double precision NOT NULL,
    unit          text NOT NULL,
    published_at  timestamptz NOT NULL,
    updated_at    timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX metric_values_series ON metric_values (metric, granularity, window_start);
CREATE INDEX metric_values_updated ON metric_values (updated_at);
