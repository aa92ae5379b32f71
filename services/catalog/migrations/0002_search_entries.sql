-- What search reads, one narrow row per service: the columns it filters, sorts and ranks
-- on, without the descriptions' texts. On the wide services row the search document was
-- read out of TOAST for every match it ranked; here a row stays inline, and a search
-- touches services only for the one page it returns. Kept by a trigger, in the very
-- statement that writes the service, so the two never disagree.
CREATE TABLE search_entries (
    service_id    text     PRIMARY KEY REFERENCES services (service_id),
    agency        text     NOT NULL,
    status        text     NOT NULL,
    category      text     NOT NULL,
    channels      text[]   NOT NULL,
    maturity      smallint NOT NULL,
    title_fa      text     NOT NULL,
    title_folded  text     NOT NULL,
    document      tsvector NOT NULL
);

CREATE FUNCTION services_keep_search_entry() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO search_entries (service_id, agency, status, category, channels, maturity,
                                title_fa, title_folded, document)
    VALUES (NEW.service_id, NEW.agency, NEW.status, NEW.category, NEW.channels, NEW.maturity,
            NEW.title_fa, NEW.title_folded, NEW.document)
    ON CONFLICT (service_id) DO UPDATE SET
        agency = EXCLUDED.agency, status = EXCLUDED.status, category = EXCLUDED.category,
        channels = EXCLUDED.channels, maturity = EXCLUDED.maturity,
        title_fa = EXCLUDED.title_fa, title_folded = EXCLUDED.title_folded,
        document = EXCLUDED.document;
    RETURN NULL;
END;
$$;

-- AFTER, so that NEW carries the generated document.
CREATE TRIGGER services_search_entry
    AFTER INSERT OR UPDATE ON services
    FOR EACH ROW EXECUTE FUNCTION services_keep_search_entry();

INSERT INTO search_entries
SELECT service_id, agency, status, category, channels, maturity, title_fa, title_folded, document
FROM services;

CREATE INDEX search_entries_document ON search_entries USING gin (document);
CREATE INDEX search_entries_title_trgm ON search_entries USING gin (title_folded public.gin_trgm_ops);
DROP INDEX services_document;
DROP INDEX services_title_trgm;
