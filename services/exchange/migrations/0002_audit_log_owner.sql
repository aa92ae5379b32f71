-- migrate as: administrator
-- The audit log, its head and its guard belong to `exchange_audit`, a role nobody logs in
-- as (created by `panjereh init`), and so does the schema: only an object's owner, its
-- schema's owner or a superuser may alter, drop or truncate it or switch its triggers off,
-- and session_replication_role is for superusers. The role that made the log (the
-- exchange's own) keeps what appending and reading need, and every other right in the
-- schema (USAGE, CREATE, its own tables).
DO $$
DECLARE
    runtime text := (SELECT pg_get_userbyid(relowner) FROM pg_class
                      WHERE oid = 'audit_log'::regclass);
BEGIN
    EXECUTE format('ALTER SCHEMA %I OWNER TO exchange_audit', current_schema());
    EXECUTE format('GRANT USAGE, CREATE ON SCHEMA %I TO %I', current_schema(), runtime);
    ALTER TABLE audit_log OWNER TO exchange_audit;
    ALTER TABLE audit_head OWNER TO exchange_audit;
    ALTER FUNCTION audit_log_is_append_only() OWNER TO exchange_audit;
    EXECUTE format('GRANT SELECT, INSERT ON audit_log TO %I', runtime);
    -- Appends lock the head (SELECT ... FOR UPDATE) and move it forward.
    EXECUTE format('GRANT SELECT, UPDATE ON audit_head TO %I', runtime);
END
$$;
