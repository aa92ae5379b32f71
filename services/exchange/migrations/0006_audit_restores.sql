-- migrate as: administrator
-- A restore from backup closes the chains it brought back. Their records after the
-- backup were lost with the database, and the checkpoints the exchange signed of them
-- meanwhile can never be matched again: `panjereh restore` (as the administrator) stamps
-- each restored chain's head with when, and appends go on in new chains only.
-- `panjereh audit verify` then holds a closed chain to its checkpoints up to its head and
-- names what a restore lost past it, instead of calling it a cut. The exchange's role may
-- move a head (seq, hash), never close or reopen one.
ALTER TABLE audit_head ADD COLUMN restored_at timestamptz;
ALTER TABLE audit_head ADD COLUMN backup_taken_at timestamptz;

CREATE FUNCTION audit_chain_begins_open() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.restored_at IS NOT NULL OR NEW.backup_taken_at IS NOT NULL THEN
        RAISE EXCEPTION 'only a restore closes an audit chain';
    END IF;
    RETURN NEW;
END;
$$;
ALTER FUNCTION audit_chain_begins_open() OWNER TO exchange_audit;
CREATE TRIGGER audit_chain_begins_open
    BEFORE INSERT ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_chain_begins_open();

DO $$
DECLARE
    runtime text := (SELECT pg_get_userbyid(relowner) FROM pg_class
                      WHERE oid = 'audit_checkpoint'::regclass);
BEGIN
    EXECUTE format('REVOKE UPDATE ON audit_head FROM %I', runtime);
    EXECUTE format('GRANT UPDATE (seq, hash) ON audit_head TO %I', runtime);
END
$$;
