-- Every code request and sign-in starts by locking the citizen's row and reading their
-- counters, the address's counter and their newest code. Two statements are needed: a
-- statement that waited for the lock still sees the joined rows as they were when it
-- began. A VOLATILE PL/pgSQL function takes a fresh snapshot for each statement, so both
-- run in one call, one round trip. No row: the citizen is not registered.
CREATE FUNCTION lock_attempt_state(citizen_id text, client_address text)
RETURNS TABLE (
    citizen text,
    mobile text,
    birth_date date,
    province text,
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
)
LANGUAGE plpgsql VOLATILE
AS $$
#variable_conflict use_column
BEGIN
    PERFORM 1 FROM citizens c WHERE c.citizen = citizen_id FOR NO KEY UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    RETURN QUERY
    SELECT c.citizen, c.mobile, c.birth_date, c.province,
           cc.failures, cc.window_started, cc.locked_until,
           ac.failures, ac.window_started, ac.locked_until,
           ch.id, ch.code_hash, ch.created_at, ch.expires_at, ch.attempts,
           ch.closed_at IS NULL
    FROM citizens c
    LEFT JOIN attempt_counters cc ON cc.scope = 'citizen' AND cc.subject = c.citizen
    LEFT JOIN attempt_counters ac
        ON ac.scope = 'client_address' AND ac.subject = lock_attempt_state.client_address
    LEFT JOIN LATERAL (
        SELECT x.id, x.code_hash, x.created_at, x.expires_at, x.attempts, x.closed_at
        FROM code_challenges x WHERE x.citizen = c.citizen
        ORDER BY x.created_at DESC LIMIT 1
    ) ch ON true
    WHERE c.citizen = citizen_id;
END
$$;
