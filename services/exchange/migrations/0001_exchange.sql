-- The exchange's projections (agencies, their keys), its own registers (data services,
-- access rights), its signing key, the transactions and the hash-chained audit log.

CREATE TABLE agencies (
    code text PRIMARY KEY,
    name_fa text NOT NULL,
    name_en text NOT NULL,
    active boolean NOT NULL,
    exchange_connected_since date,
    revision integer NOT NULL
);

-- One row per key id, latest state; a revocation is final even if a publication follows.
CREATE TABLE agency_keys (
    kid text PRIMARY KEY,
    agency text NOT NULL,
    algorithm text,
    jwk jsonb,
    not_before timestamptz,
    expires_at timestamptz,
    revoked_at timestamptz,
    revoked_reason text
);

CREATE TABLE data_services (
    data_service text PRIMARY KEY,
    version integer NOT NULL,
    provider text NOT NULL,
    name_fa text NOT NULL,
    name_en text NOT NULL,
    request_schema jsonb NOT NULL,
    response_schema jsonb NOT NULL,
    timeout_ms integer NOT NULL,
    purposes text[] NOT NULL,
    personal_data boolean NOT NULL,
    active boolean NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE access_rights (
    right_id uuid PRIMARY KEY,
    consumer text NOT NULL,
    data_service text NOT NULL,
    purposes text[] NOT NULL,
    legal_basis text NOT NULL,
    valid_from timestamptz NOT NULL,
    valid_until timestamptz,
    revoked_at timestamptz,
    revoked_reason text
);
CREATE INDEX access_rights_lookup ON access_rights (consumer, data_service);

-- The exchange's own signing keys; the newest active one signs.
CREATE TABLE signing_keys (
    kid text PRIMARY KEY,
    private_jwk jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE transactions (
    transaction_id uuid PRIMARY KEY,
    consumer text NOT NULL,
    provider text,
    data_service text NOT NULL,
    purpose text NOT NULL,
    citizen text,
    personal_data boolean NOT NULL,
    status text NOT NULL CHECK (
        status IN ('pending', 'answered', 'denied', 'refused', 'timed_out', 'failed')
    ),
    reason text,
    request_bytes integer NOT NULL,
    response_bytes integer NOT NULL DEFAULT 0,
    requested_at timestamptz NOT NULL,
    forwarded_at timestamptz,
    deadline timestamptz,
    responded_at timestamptz,
    completed_at timestamptz,
    late_response_at timestamptz,
    completion jsonb
);
CREATE INDEX transactions_pending_deadline ON transactions (deadline) WHERE status = 'pending';

-- Append-only and hash-chained: each row's hash covers its content and the previous
-- row's hash. Payloads are kept only as SHA-256 digests.
CREATE TABLE audit_log (
    seq bigint PRIMARY KEY,
    recorded_at timestamptz NOT NULL,
    transaction_id uuid NOT NULL,
    kind text NOT NULL,
    outcome text NOT NULL,
    consumer text NOT NULL,
    provider text,
    data_service text NOT NULL,
    purpose text NOT NULL,
    legal_basis text,
    citizen text,
    reason text,
    content_digest text,
    signature text,
    previous_hash text NOT NULL,
    hash text NOT NULL
);
CREATE INDEX audit_log_citizen ON audit_log (citizen, seq) WHERE citizen IS NOT NULL;
CREATE INDEX audit_log_transaction ON audit_log (transaction_id);

-- The chain's head: appends lock it, so the chain stays a single line.
CREATE TABLE audit_head (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    seq bigint NOT NULL,
    hash text NOT NULL
);
INSERT INTO audit_head (seq, hash) VALUES (0, repeat('0', 64));

CREATE FUNCTION audit_log_is_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only (% refused)', TG_OP;
END;
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_is_append_only();
CREATE TRIGGER audit_log_no_truncate
    BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_is_append_only();
