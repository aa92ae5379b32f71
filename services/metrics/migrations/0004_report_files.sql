-- Generated report files (a province's weekly report, the national weekly summary, the
-- quarterly evaluation of agencies), in each format. Every revision is a row (history): a
-- file regenerated with different content is the next revision; the same content again
-- adds nothing. `subject` is '' for a report of the whole period (a province's code for a
-- province's). `record` is the event the revision was announced as on programme.reports.

CREATE TABLE report_files (
    kind          text        NOT NULL,
    period        text        NOT NULL,
    subject       text        NOT NULL DEFAULT '',
    format        text        NOT NULL CHECK (format IN ('html', 'pdf', 'csv')),
    revision      integer     NOT NULL CHECK (revision >= 1),
    content       bytea       NOT NULL,
    sha256        text        NOT NULL,
    size          integer     NOT NULL CHECK (size >= 0),
    media_type    text        NOT NULL,
    generated_at  timestamptz NOT NULL,
    record        jsonb       NOT NULL,
    PRIMARY KEY (kind, period, subject, format, revision)
);
CREATE INDEX report_files_by_period ON report_files (kind, period, generated_at);
