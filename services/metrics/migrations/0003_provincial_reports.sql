-- The provincial ICT directorates' weekly reports. Every revision is a row (history): a
-- resubmission for the same province and week is a correction, the next revision; the
-- report's current state is its highest revision. `record` is the event the revision was
-- published as on programme.provincial-reports (shared/events/programme.py); the other
-- columns are what reports are looked up by. The week's bounds are kept so that "the weeks
-- before this one" is a comparison of times, not of labels.

CREATE TABLE provincial_reports (
    province      text        NOT NULL,
    week          text        NOT NULL,
    revision      integer     NOT NULL CHECK (revision >= 1),
    week_start    timestamptz NOT NULL,
    week_end      timestamptz NOT NULL CHECK (week_end > week_start),
    figures       jsonb       NOT NULL,
    projects      jsonb       NOT NULL,
    reasons       jsonb       NOT NULL,
    late          boolean     NOT NULL,
    submitted_by  text        NOT NULL,
    submitted_at  timestamptz NOT NULL,
    record        jsonb       NOT NULL,
    PRIMARY KEY (province, week, revision)
);
CREATE INDEX provincial_reports_by_week ON provincial_reports (week, province, revision);
CREATE INDEX provincial_reports_by_province ON provincial_reports (province, week_start);
