-- The projection of metrics.evaluations: each agency's latest scorecard per Jalali quarter,
-- as the metrics worker published it (by the envelope's occurred_at: an older publication
-- never replaces a newer one, and the same scorecard again changes nothing). Rebuilt from
-- the compacted topic alone if it is ever lost.
CREATE TABLE agency_evaluations (
    quarter      text        NOT NULL CHECK (quarter ~ '^[0-9]{4}-Q[1-4]$'),
    agency       text        NOT NULL,
    occurred_at  timestamptz NOT NULL,
    payload      jsonb       NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (quarter, agency)
);

-- Which figures each quarter's printable report was last generated from: the latest
-- scorecard's update when it was generated. A quarter whose scorecards changed since
-- (late deliveries, a new weight) has its report generated again.
CREATE TABLE evaluation_reports (
    quarter        text        PRIMARY KEY CHECK (quarter ~ '^[0-9]{4}-Q[1-4]$'),
    figures_as_of  timestamptz NOT NULL,
    generated_at   timestamptz NOT NULL
);
