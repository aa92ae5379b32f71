-- When each week's reports (a province's, the national summary) were last generated, and
-- from which reports: a report submitted after `generated_from` (of the week, or of the
-- week before, whose figures the week's changes are measured against) makes the week due
-- again. The files themselves are in report_files.

CREATE TABLE weekly_report_runs (
    week            text        PRIMARY KEY,
    week_start      timestamptz NOT NULL,
    week_end        timestamptz NOT NULL CHECK (week_end > week_start),
    generated_from  timestamptz NOT NULL,
    generated_at    timestamptz NOT NULL
);

-- Which reports came in after a week's reports were generated.
CREATE INDEX provincial_reports_by_submission ON provincial_reports (submitted_at);
