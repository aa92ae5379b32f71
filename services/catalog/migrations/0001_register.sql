-- The catalog's register of agencies and services, its history, and recorded deliveries.
-- search_path is the catalog schema; pg_trgm lives in `public` so that one installation
-- serves the whole database and its objects are named unambiguously.

CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;

-- The current state of each agency; every change is also kept in agency_revisions.
CREATE TABLE agencies (
    code                      text        PRIMARY KEY,
    name_fa                   text        NOT NULL,
    name_en                   text        NOT NULL,
    ministry_fa               text,
    ministry_en               text,
    province                  text,
    window_connected_since    date,
    exchange_connected_since  date,
    active                    boolean     NOT NULL,
    revision                  integer     NOT NULL CHECK (revision >= 1),
    -- Folded at write time with shared.persian.fold / fold_joined, like the queries.
    name_folded               text        NOT NULL,
    updated_at                timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agencies_province ON agencies (province);

CREATE TABLE agency_revisions (
    code            text        NOT NULL REFERENCES agencies (code),
    revision        integer     NOT NULL,
    change          text        NOT NULL,
    changed_fields  text[]      NOT NULL,
    changed_by      text        NOT NULL,
    record          jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (code, revision)
);

-- The current state of each service; every change is also kept in service_revisions.
CREATE TABLE services (
    service_id          text        PRIMARY KEY,
    agency              text        NOT NULL REFERENCES agencies (code),
    title_fa            text        NOT NULL,
    title_en            text        NOT NULL,
    description_fa      text        NOT NULL,
    description_en      text        NOT NULL,
    category            text        NOT NULL,
    audiences           text[]      NOT NULL,
    channels            text[]      NOT NULL,
    maturity            smallint    NOT NULL CHECK (maturity BETWEEN 0 AND 5),
    data_needs          text[]      NOT NULL,
    status              text        NOT NULL CHECK (status IN ('draft', 'published', 'retired')),
    revision            integer     NOT NULL CHECK (revision >= 1),
    -- Both foldings of the titles and descriptions (ZWNJ as a space, and ZWNJ removed),
    -- so a word typed either way is found.
    title_folded        text        NOT NULL,
    description_folded  text        NOT NULL,
    document            tsvector    GENERATED ALWAYS AS (
        setweight(to_tsvector('simple', title_folded), 'A')
        || setweight(to_tsvector('simple', description_folded), 'B')
    ) STORED,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX services_document ON services USING gin (document);
-- Trigrams of the (short) titles only: near matches and misspellings of what users look
-- for; descriptions are long, and trigram checks on them cost more than they find.
CREATE INDEX services_title_trgm ON services USING gin (title_folded public.gin_trgm_ops);
CREATE INDEX services_agency ON services (agency);
CREATE INDEX services_status_category ON services (status, category);

CREATE TABLE service_revisions (
    service_id      text        NOT NULL REFERENCES services (service_id),
    revision        integer     NOT NULL,
    change          text        NOT NULL,
    changed_fields  text[]      NOT NULL,
    changed_by      text        NOT NULL,
    record          jsonb       NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (service_id, revision)
);

-- Deliveries that passed validation; report_id makes a report delivered twice count once.
CREATE TABLE deliveries (
    report_id    uuid        PRIMARY KEY,
    service_id   text        NOT NULL,
    agency       text        NOT NULL,
    channel      text        NOT NULL,
    province     text        NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    outcome      text        NOT NULL,
    maturity     smallint    NOT NULL,
    recorded_at  timestamptz NOT NULL DEFAULT now()
);
