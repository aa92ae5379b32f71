-- Every code request and sign-in is judged on the citizen's state: their record, their
-- counter, the client address's counter and their newest code.
--
-- `attempt_version` moves on with every change to a citizen's codes or counter. Most
-- attempts succeed and collide with nothing: they are judged on a plain read and written
-- by one statement that first moves the version on from the one they read, and writes
-- nothing if another attempt moved it meanwhile (then they are judged again, locked).
ALTER TABLE citizens ADD COLUMN attempt_version bigint NOT NULL DEFAULT 0;

CREATE TYPE citizen_attempt_state AS (
    citizen text,
    mobile text,
    birth_date date,
    province text,
    attempt_version bigint,
    citizen_failures integer,
    citizen_window_started timestamptz,
    citizen_locked_until timestamptz,
    address_failures integer,
    address_window_started timestamptz,
    address_locked_until timestamptz,
    challenge_id uuid,
    code_hash bytea,
    challenge_created_at timestamptz,
    challenge_expires_at timestamptz,
    attempts integer,
    open boolean
);

CREATE FUNCTION attempt_state(citizen_id text, client_address text)
RETURNS SETOF citizen_attempt_state
LANGUAGE sql STABLE
AS $$
    SELECT c.citizen, c.mobile, c.birth_date, c.province, c.attempt_version,
           cc.failures, cc.window_started, cc.locked_until,
           ac.failures, ac.window_started, ac.locked_until,
           ch.id, ch.code_hash, ch.created_at, ch.expires_at, ch.attempts,
           ch.closed_at IS NULL
    FROM citizens c
    LEFT JOIN attempt_counters cc ON cc.scope = 'citizen' AND cc.subject = c.citizen
    LEFT JOIN attempt_counters ac ON ac.scope = 'client_address' AND ac.subject = $2
    LEFT JOIN LATERAL (
        SELECT x.id, x.code_hash, x.created_at, x.expires_at, x.attempts, x.closed_at
        FROM code_challenges x WHERE x.citizen = c.citizen
        ORDER BY x.created_at DESC LIMIT 1
    ) ch ON true
    WHERE c.citizen = $1
$$;

-- The same, for an attempt judged under the citizen's row lock (held to the end of the
-- caller's transaction), with the version moved on. Two statements: one that waited for
-- the lock still sees the joined rows as they were when it began, and a VOLATILE
-- PL/pgSQL function takes a fresh snapshot for each statement. One call, one round trip.
-- No row: the citizen is not registered.
CREATE FUNCTION lock_attempt_state(citizen_id text, client_address text)
RETURNS SETOF citizen_attempt_state
LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    UPDATE citizens c SET attempt_version = c.attempt_version + 1
    WHERE c.citizen = citizen_id;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY SELECT * FROM attempt_state(citizen_id, client_address);
END
$$;
