-- Identity's own tables. No plain national ID is stored: a citizen is their pseudonymous
-- id (a keyed hash of the national ID), which is also what every event carries.

CREATE TABLE citizens (
    citizen        text PRIMARY KEY,
    mobile         text        NOT NULL,
    first_name     text        NOT NULL,
    last_name      text        NOT NULL,
    birth_date     date        NOT NULL,
    province       text        NOT NULL,
    registered_at  timestamptz NOT NULL DEFAULT now()
);

-- One-time codes, stored as a keyed hash bound to the challenge id.
CREATE TABLE code_challenges (
    id             uuid PRIMARY KEY,
    citizen        text        NOT NULL REFERENCES citizens (citizen),
    code_hash      bytea       NOT NULL,
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    attempts       integer     NOT NULL DEFAULT 0,
    closed_at      timestamptz,
    closed_because text
);
CREATE INDEX code_challenges_open ON code_challenges (citizen, created_at DESC)
    WHERE closed_at IS NULL;

-- Failed attempts per subject (a citizen or a client address) in the current window.
-- Rows are locked (SELECT … FOR UPDATE) while an attempt is judged, so concurrent
-- attempts are counted one after the other and a limit can never be overshot.
CREATE TABLE attempt_counters (
    scope          text        NOT NULL CHECK (scope IN ('citizen', 'client_address')),
    subject        text        NOT NULL,
    failures       integer     NOT NULL DEFAULT 0,
    window_started timestamptz NOT NULL,
    locked_until   timestamptz,
    PRIMARY KEY (scope, subject)
);

CREATE TABLE sign_ins (
    id             bigserial PRIMARY KEY,
    citizen        text        NOT NULL,
    at             timestamptz NOT NULL,
    client_address text        NOT NULL,
    channel        text        NOT NULL,
    user_agent     text,
    outcome        text        NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'locked_out')),
    reason         text
);
CREATE INDEX sign_ins_by_citizen ON sign_ins (citizen, at DESC, id DESC);

-- The issuer's signing keys. A key signs from not_before and verifies until retired_at.
CREATE TABLE issuer_keys (
    kid            text PRIMARY KEY,
    private_jwk    jsonb       NOT NULL,
    public_jwk     jsonb       NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    not_before     timestamptz NOT NULL,
    retired_at     timestamptz
);

-- A sign-in session: every refresh token rotated from one sign-in belongs to one family.
CREATE TABLE refresh_families (
    id                 uuid PRIMARY KEY,
    citizen            text        NOT NULL,
    channel            text        NOT NULL,
    level_of_assurance integer     NOT NULL,
    created_at         timestamptz NOT NULL,
    revoked_at         timestamptz,
    revoked_because    text
);

CREATE TABLE refresh_tokens (
    token_hash     bytea PRIMARY KEY,
    family_id      uuid        NOT NULL REFERENCES refresh_families (id),
    issued_at      timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    rotated_at     timestamptz
);
CREATE INDEX refresh_tokens_by_family ON refresh_tokens (family_id);

-- The projection of the catalog's register of agencies (catalog.agencies).
CREATE TABLE agencies (
    code           text PRIMARY KEY,
    name_fa        text        NOT NULL,
    name_en        text        NOT NULL,
    ministry_fa    text,
    ministry_en    text,
    province       text,
    active         boolean     NOT NULL,
    revision       integer     NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);

-- Agency systems' client credentials; the secret is kept only as an argon2 hash.
CREATE TABLE agency_clients (
    client_id      text PRIMARY KEY,
    agency         text        NOT NULL REFERENCES agencies (code),
    name           text        NOT NULL,
    secret_hash    text        NOT NULL,
    scopes         text[]      NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz
);
CREATE INDEX agency_clients_by_agency ON agency_clients (agency);

-- The public keys agencies' systems sign with; kid is unique across agencies, as on
-- the compacted topic identity.agency-keys.
CREATE TABLE agency_keys (
    kid            text PRIMARY KEY,
    agency         text        NOT NULL REFERENCES agencies (code),
    algorithm      text        NOT NULL,
    jwk            jsonb       NOT NULL,
    not_before     timestamptz NOT NULL,
    expires_at     timestamptz,
    registered_by  text        NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now(),
    revoked_at     timestamptz,
    revoked_because text
);
CREATE INDEX agency_keys_by_agency ON agency_keys (agency);
