-- Failures are counted per client network (an IPv4 /24, an IPv6 /64) instead of per raw
-- address, and a citizen's failures per citizen and network (subject: the pseudonym, a
-- space, the network; `domain.attempts.citizen_on_network`): whoever fails on purpose
-- from one network locks the citizen out there only. The second argument is now the
-- client's network (its name stays: a replaced function keeps its parameters' names).
-- Counters stored under the old subjects match nothing any more and
-- simply expire.
CREATE OR REPLACE FUNCTION attempt_state(citizen_id text, client_address text)
RETURNS SETOF citizen_attempt_state
LANGUAGE sql STABLE
AS $$
    SELECT c.citizen, c.mobile, c.birth_date, c.province, c.attempt_version,
           cc.failures, cc.window_started, cc.locked_until,
           ac.failures, ac.window_started, ac.locked_until,
           ch.id, ch.code_hash, ch.created_at, ch.expires_at, ch.attempts,
           ch.closed_at IS NULL
    FROM citizens c
    LEFT JOIN attempt_counters cc
        ON cc.scope = 'citizen' AND cc.subject = c.citizen || ' ' || $2
    LEFT JOIN attempt_counters ac ON ac.scope = 'client_address' AND ac.subject = $2
    LEFT JOIN LATERAL (
        SELECT x.id, x.code_hash, x.created_at, x.expires_at, x.attempts, x.closed_at
        FROM code_challenges x WHERE x.citizen = c.citizen
        ORDER BY x.created_at DESC LIMIT 1
    ) ch ON true
    WHERE c.citizen = $1
$$;
