-- The programme register: indicators, targets and reported figures. Every revision is a
-- row (history); an entry's current state is its highest revision. `record` is the event
-- the revision was published as (shared/events/programme.py); the other columns are what
-- the register is looked up and filtered by.

CREATE TABLE programme_indicators (
    code         text        NOT NULL,
    revision     integer     NOT NULL CHECK (revision >= 1),
    record       jsonb       NOT NULL,
    changed_by   text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (code, revision)
);

CREATE TABLE programme_targets (
    target_id    text        NOT NULL,
    revision     integer     NOT NULL CHECK (revision >= 1),
    indicator    text        NOT NULL,
    record       jsonb       NOT NULL,
    changed_by   text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (target_id, revision)
);

-- `key` is the figure's record key on programme.observations: indicator, scope and day.
-- A correction is the next revision of the same key.
CREATE TABLE programme_observations (
    key          text        NOT NULL,
    revision     integer     NOT NULL CHECK (revision >= 1),
    indicator    text        NOT NULL,
    scope        text        NOT NULL CHECK (scope IN ('national', 'province', 'agency')),
    scope_code   text,
    observed_on  text        NOT NULL,
    value        double precision NOT NULL,
    record       jsonb       NOT NULL,
    reported_by  text        NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (key, revision)
);
CREATE INDEX programme_observations_by_indicator
    ON programme_observations (indicator, scope, scope_code, observed_on);

-- The projection of metrics.programme: each target's latest progress as the metrics worker
-- published it (by the envelope's occurred_at: an older publication never replaces a
-- newer one). Rebuilt from the compacted topic alone if it is ever lost.
CREATE TABLE target_progress (
    target_id    text        PRIMARY KEY,
    occurred_at  timestamptz NOT NULL,
    payload      jsonb       NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT clock_timestamp()
);
