-- migrate as: administrator
-- The audit log becomes several hash chains, each with a head of its own. An append
-- locks one chain's head until it commits; with a single head, every poll of every
-- exchange process waited for the one before it. Now an append takes the first chain
-- no other transaction holds (FOR UPDATE SKIP LOCKED), and a new chain when all are
-- held: the records of one chain still form one line, and the log as a whole is every
-- chain. Chain 0 is the log as it was. `panjereh audit verify` walks each chain.
ALTER TABLE audit_log ADD COLUMN chain integer NOT NULL DEFAULT 0 CHECK (chain >= 0);
ALTER TABLE audit_log ALTER COLUMN chain DROP DEFAULT;
ALTER TABLE audit_log DROP CONSTRAINT audit_log_pkey;
ALTER TABLE audit_log ADD PRIMARY KEY (chain, seq);
-- A citizen's requests, newest first, across chains.
DROP INDEX audit_log_citizen;
CREATE INDEX audit_log_citizen ON audit_log (citizen, recorded_at) WHERE citizen IS NOT NULL;

ALTER TABLE audit_head ADD COLUMN chain integer NOT NULL DEFAULT 0 CHECK (chain >= 0);
ALTER TABLE audit_head ALTER COLUMN chain DROP DEFAULT;
ALTER TABLE audit_head DROP COLUMN singleton;
ALTER TABLE audit_head ADD PRIMARY KEY (chain);

-- A chain begins at the genesis hash: the exchange's role may add a chain, never one
-- whose head claims records that are not there.
CREATE FUNCTION audit_chain_begins_at_genesis() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.seq <> 0 OR NEW.hash <> repeat('0', 64) THEN
        RAISE EXCEPTION 'a new audit chain begins at seq 0 and the genesis hash';
    END IF;
    RETURN NEW;
END;
$$;
ALTER FUNCTION audit_chain_begins_at_genesis() OWNER TO exchange_audit;
CREATE TRIGGER audit_chain_begins_at_genesis
    BEFORE INSERT ON audit_head
    FOR EACH ROW EXECUTE FUNCTION audit_chain_begins_at_genesis();

-- How far the checkpoints reached, per chain.
ALTER TABLE audit_checkpoint ADD COLUMN chain integer NOT NULL DEFAULT 0 CHECK (chain >= 0);
ALTER TABLE audit_checkpoint ALTER COLUMN chain DROP DEFAULT;
ALTER TABLE audit_checkpoint DROP COLUMN singleton;
ALTER TABLE audit_checkpoint ADD PRIMARY KEY (chain);

DO $$
DECLARE
    runtime text := (SELECT pg_get_userbyid(relowner) FROM pg_class
                      WHERE oid = 'audit_checkpoint'::regclass);
BEGIN
    EXECUTE format('GRANT INSERT ON audit_head TO %I', runtime);
END
$$;
