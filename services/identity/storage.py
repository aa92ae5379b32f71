"""The identity service's storage: its own Postgres schema `identity`, reached with asyncpg.

The schema is created by `migrations/`; besides the service's tables it holds the outbox
and the inbox every service keeps (`shared/migrations`). `IdentityStorage` is the unit of
work (one transaction); `IdentityStatements` works on a connection outside a transaction,
one atomic statement per call, and opens an `IdentityStorage` on the same connection when
a use case needs a transaction (the ports are in `use_cases/ports.py`).

A citizen's successful attempt is written with its event by ONE statement
(`shared.outbox.enqueue(..., along=Change)`) guarded by the citizen's attempt version:
the fast path of every code request and sign-in, and the same write under the lock.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from services.identity.domain.attempts import (
    AttemptState,
    Challenge,
    CitizenRecord,
    NewChallenge,
    NewCitizen,
    SignInRecord,
)
from services.identity.domain.codes import Counter, LockScope
from services.identity.domain.tokens import (
    AgencyClient,
    ClientRegistration,
    NewSession,
    RefreshToken,
    SigningKey,
)
from shared.db import Connection, Pool
from shared.envelope import Envelope
from shared.events.identity import AgencyKeyPublished, CitizenAuthenticated, SmsRequested
from shared.outbox import Change, enqueue
from shared.sealing import Sealer
from shared.unit_of_work import UnitOfWork

_ISSUER_KEYS_LOCK = "SELECT pg_advisory_xact_lock(hashtext('identity-issuer-keys'))"
_SIGN_IN_COLUMNS = "citizen, at, client_address, channel, user_agent, outcome, reason"


# A citizen's attempts ------------------------------------------------------------------


def _counter(row: Any, prefix: str) -> Counter | None:
    if row[f"{prefix}_window_started"] is None:
        return None
    return Counter(
        row[f"{prefix}_failures"], row[f"{prefix}_window_started"], row[f"{prefix}_locked_until"]
    )


async def _attempt_state(
    connection: Connection, citizen_id: str, network: str, *, lock: bool
) -> AttemptState | None:
    """The citizen, their counter on the client's network, the network's counter and their
    newest code; None if the citizen is not registered. One round trip either way
    (migrations 0003 and 0004).

    With `lock`, the citizen's row is locked to the end of the caller's transaction (and
    their `version` moved on): attempts judged under the lock are judged one after the
    other, and the citizen's counter and codes change only under it or by a write whose
    version guard holds. The network's counter is only read here; it is locked when a
    failure is counted against it (`lock_counter`).
    """
    row = await connection.fetchrow(
        "SELECT * FROM lock_attempt_state($1, $2)"
        if lock
        else "SELECT * FROM attempt_state($1, $2)",
        citizen_id,
        network,
    )
    if row is None:
        return None
    challenge = None
    if row["challenge_id"] is not None:
        challenge = Challenge(
            id=row["challenge_id"],
            code_hash=row["code_hash"],
            created_at=row["challenge_created_at"],
            expires_at=row["challenge_expires_at"],
            attempts=row["attempts"],
            open=row["open"],
        )
    return AttemptState(
        record=CitizenRecord(row["citizen"], row["mobile"], row["birth_date"], row["province"]),
        version=row["attempt_version"],
        citizen_counter=_counter(row, "citizen"),
        address_counter=_counter(row, "address"),
        newest_challenge=challenge,
    )


def _moved_on(citizen: str, version: str) -> str:
    """The guard of a write judged on `version`: it moves the citizen's version on, and
    finds no row (so nothing is written) if another attempt moved it first."""
    return (
        "attempt AS (UPDATE citizens SET attempt_version = attempt_version + 1"
        f" WHERE citizen = {citizen} AND attempt_version = {version} RETURNING 1)"
    )


def _sign_in_values(record: SignInRecord) -> tuple[Any, ...]:
    return (
        record.citizen,
        record.at,
        record.client_address,
        record.channel,
        record.user_agent,
        record.outcome,
        record.reason,
    )


class _OptimisticWrites:
    """The guarded writes of `use_cases.ports.OptimisticWrites`: each ONE statement that
    writes the change and its event, needing no transaction around it."""

    async def _connection(self) -> Connection:
        raise NotImplementedError

    async def try_open_challenge(
        self, state: AttemptState, challenge: NewChallenge, message: Envelope[SmsRequested]
    ) -> bool:
        return await enqueue(
            await self._connection(),
            message,
            along=Change(
                _moved_on("$2", "$6") + ","
                " superseded AS (UPDATE code_challenges SET closed_at = $4,"
                " closed_because = 'superseded' WHERE citizen = $2 AND closed_at IS NULL"
                " AND EXISTS (SELECT 1 FROM attempt)),"
                " opened AS (INSERT INTO code_challenges (id, citizen, code_hash, created_at,"
                " expires_at) SELECT $1, $2, $3, $4, $5 FROM attempt)",
                (
                    challenge.id,
                    state.record.citizen,
                    challenge.code_hash,
                    challenge.created_at,
                    challenge.expires_at,
                    state.version,
                ),
                guard="attempt",
            ),
        )

    async def try_sign_in(
        self,
        state: AttemptState,
        used_challenge: uuid.UUID,
        session: NewSession,
        record: SignInRecord,
        event: Envelope[CitizenAuthenticated],
    ) -> bool:
        return await enqueue(
            await self._connection(),
            event,
            along=Change(
                _moved_on("$2", "$15") + ","
                " used AS (UPDATE code_challenges SET closed_at = $12, closed_because = 'used'"
                "  WHERE id = $1 AND EXISTS (SELECT 1 FROM attempt)),"
                f" history AS (INSERT INTO sign_ins ({_SIGN_IN_COLUMNS})"
                "  SELECT $2, $3, $4, $5, $6, $7, $8 FROM attempt),"
                " family AS (INSERT INTO refresh_families"
                "  (id, citizen, channel, level_of_assurance, created_at)"
                "  SELECT $9, $2, $14, $10, $12 FROM attempt RETURNING id),"
                " first_token AS (INSERT INTO refresh_tokens (token_hash, family_id, issued_at,"
                "  expires_at) SELECT $11, id, $12, $13 FROM family)",
                (
                    used_challenge,
                    *_sign_in_values(record),
                    session.family_id,
                    session.level_of_assurance,
                    session.first_token_hash,
                    session.created_at,
                    session.expires_at,
                    session.channel,
                    state.version,
                ),
                guard="attempt",
            ),
        )


# Issuer keys: private halves sealed with the data key, bound to their kid -------------


def _issuer_key_binding(kid: str) -> str:
    return f"identity.issuer_keys:{kid}"


async def issuer_keys(connection: Connection, sealer: Sealer) -> list[SigningKey]:
    """Every issuer key, private halves opened (rows sealed or, from older releases, not)."""
    rows = await connection.fetch(
        "SELECT kid, private_jwk, public_jwk, not_before, retired_at FROM issuer_keys"
        " ORDER BY not_before"
    )
    keys = []
    for row in rows:
        fields = dict(row)
        fields["private_jwk"] = sealer.open(
            row["private_jwk"], binding=_issuer_key_binding(row["kid"])
        )
        keys.append(SigningKey(**fields))
    return keys


async def seal_plain_issuer_keys(connection: Connection, sealer: Sealer) -> int:
    """Seal private keys that older releases stored in the clear; returns how many."""
    rows = await connection.fetch(
        "SELECT kid, private_jwk FROM issuer_keys WHERE NOT private_jwk ? 'sealed' FOR UPDATE"
    )
    for row in rows:
        await connection.execute(
            "UPDATE issuer_keys SET private_jwk = $2 WHERE kid = $1",
            row["kid"],
            sealer.seal(row["private_jwk"], binding=_issuer_key_binding(row["kid"])),
        )
    return len(rows)


# The unit of work ----------------------------------------------------------------------


class IdentityStorage(_OptimisticWrites, UnitOfWork):
    """One transaction of identity's storage (`use_cases.ports.IdentityWork`).

    `sealer` opens and seals the issuer's private keys; only the issuer's methods need it.
    """

    def __init__(self, connection: Connection, sealer: Sealer | None = None) -> None:
        super().__init__(connection)
        self._sealer = sealer

    async def _connection(self) -> Connection:
        return self.connection

    @property
    def sealer(self) -> Sealer:
        if self._sealer is None:
            raise RuntimeError("this unit of work was made without the data key's sealer")
        return self._sealer

    # Citizens and their attempts.

    async def insert_citizen(self, citizen: NewCitizen) -> bool:
        inserted = await self.connection.fetchval(
            "INSERT INTO citizens (citizen, mobile, first_name, last_name, birth_date, province,"
            " registered_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (citizen) DO NOTHING RETURNING true",
            citizen.citizen,
            citizen.mobile,
            citizen.first_name,
            citizen.last_name,
            citizen.birth_date,
            citizen.province,
            citizen.registered_at,
        )
        return bool(inserted)

    async def lock_attempt_state(self, citizen: str, network: str) -> AttemptState | None:
        return await _attempt_state(self.connection, citizen, network, lock=True)

    async def peek_counter(self, scope: LockScope, subject: str) -> Counter | None:
        row = await self.connection.fetchrow(
            "SELECT failures, window_started, locked_until FROM attempt_counters"
            " WHERE scope = $1 AND subject = $2",
            scope,
            subject,
        )
        if row is None:
            return None
        return Counter(row["failures"], row["window_started"], row["locked_until"])

    async def lock_counter(self, scope: LockScope, subject: str, now: datetime) -> Counter:
        await self.connection.execute(
            "INSERT INTO attempt_counters (scope, subject, window_started) VALUES ($1, $2, $3)"
            " ON CONFLICT (scope, subject) DO NOTHING",
            scope,
            subject,
            now,
        )
        row = await self.connection.fetchrow(
            "SELECT failures, window_started, locked_until FROM attempt_counters"
            " WHERE scope = $1 AND subject = $2 FOR UPDATE",
            scope,
            subject,
        )
        assert row is not None
        return Counter(row["failures"], row["window_started"], row["locked_until"])

    async def save_counter(self, scope: LockScope, subject: str, counter: Counter) -> None:
        await self.connection.execute(
            "INSERT INTO attempt_counters (scope, subject, failures, window_started,"
            " locked_until) VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, subject) DO UPDATE"
            " SET failures = $3, window_started = $4, locked_until = $5",
            scope,
            subject,
            counter.failures,
            counter.window_started,
            counter.locked_until,
        )

    async def count_attempt(self, challenge_id: uuid.UUID) -> None:
        await self.connection.execute(
            "UPDATE code_challenges SET attempts = attempts + 1 WHERE id = $1", challenge_id
        )

    async def close_challenge(self, challenge_id: uuid.UUID, now: datetime, because: str) -> None:
        await self.connection.execute(
            "UPDATE code_challenges SET closed_at = $2, closed_because = $3 WHERE id = $1",
            challenge_id,
            now,
            because,
        )

    async def record_sign_in(self, record: SignInRecord) -> None:
        await self.connection.execute(
            f"INSERT INTO sign_ins ({_SIGN_IN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            *_sign_in_values(record),
        )

    # Sessions.

    async def lock_refresh_token(self, token_hash: bytes) -> RefreshToken | None:
        row = await self.connection.fetchrow(
            "SELECT t.token_hash, t.family_id, t.expires_at, t.rotated_at, f.citizen,"
            " f.channel, f.level_of_assurance, f.revoked_at AS family_revoked_at,"
            " f.created_at AS session_started_at"
            " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id"
            " WHERE t.token_hash = $1 FOR UPDATE",
            token_hash,
        )
        return RefreshToken(**dict(row)) if row else None

    async def rotate_refresh_token(self, token_hash: bytes, now: datetime) -> None:
        await self.connection.execute(
            "UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1", token_hash, now
        )

    async def insert_refresh_token(
        self, token_hash: bytes, family_id: uuid.UUID, now: datetime, expires_at: datetime
    ) -> None:
        await self.connection.execute(
            "INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at)"
            " VALUES ($1, $2, $3, $4)",
            token_hash,
            family_id,
            now,
            expires_at,
        )

    async def revoke_family(self, family_id: uuid.UUID, now: datetime, because: str) -> bool:
        revoked = await self.connection.fetchval(
            "UPDATE refresh_families SET revoked_at = $2, revoked_because = $3"
            " WHERE id = $1 AND revoked_at IS NULL RETURNING true",
            family_id,
            now,
            because,
        )
        return bool(revoked)

    # Agencies.

    async def upsert_agency(self, record: dict[str, Any]) -> None:
        await self.connection.execute(
            "INSERT INTO agencies (code, name_fa, name_en, ministry_fa, ministry_en, province,"
            " active, revision, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, now())"
            " ON CONFLICT (code) DO UPDATE SET name_fa = EXCLUDED.name_fa,"
            " name_en = EXCLUDED.name_en, ministry_fa = EXCLUDED.ministry_fa,"
            " ministry_en = EXCLUDED.ministry_en, province = EXCLUDED.province,"
            " active = EXCLUDED.active, revision = EXCLUDED.revision, updated_at = now()"
            " WHERE agencies.revision < EXCLUDED.revision",
            record["code"],
            record["name_fa"],
            record["name_en"],
            record["ministry_fa"],
            record["ministry_en"],
            record["province"],
            record["active"],
            record["revision"],
        )

    async def agency_active(self, code: str) -> bool:
        row = await self.connection.fetchrow("SELECT * FROM agencies WHERE code = $1", code)
        return row is not None and bool(row["active"])

    async def insert_client(self, client: ClientRegistration) -> None:
        await self.connection.execute(
            "INSERT INTO agency_clients (client_id, agency, name, secret_hash, scopes,"
            " created_at) VALUES ($1, $2, $3, $4, $5, $6)",
            client.client_id,
            client.agency,
            client.name,
            client.secret_hash,
            client.scopes,
            client.created_at,
        )

    async def revoke_client(self, agency: str, client_id: str, now: datetime) -> bool:
        revoked = await self.connection.fetchval(
            "UPDATE agency_clients SET revoked_at = coalesce(revoked_at, $3)"
            " WHERE agency = $1 AND client_id = $2 RETURNING true",
            agency,
            client_id,
            now,
        )
        return bool(revoked)

    async def insert_agency_key(self, key: AgencyKeyPublished, registered_by: str) -> bool:
        inserted = await self.connection.fetchval(
            "INSERT INTO agency_keys (kid, agency, algorithm, jwk, not_before, expires_at,"
            " registered_by) VALUES ($1, $2, $3, $4, $5, $6, $7)"
            " ON CONFLICT (kid) DO NOTHING RETURNING true",
            key.kid,
            key.agency,
            key.algorithm,
            key.jwk,
            key.not_before,
            key.expires_at,
            registered_by,
        )
        return bool(inserted)

    async def revoke_agency_key(
        self, agency: str, kid: str, now: datetime, because: str
    ) -> bool | None:
        row = await self.connection.fetchrow(
            "SELECT revoked_at FROM agency_keys WHERE agency = $1 AND kid = $2 FOR UPDATE",
            agency,
            kid,
        )
        if row is None:
            return None
        if row["revoked_at"] is not None:
            return False
        await self.connection.execute(
            "UPDATE agency_keys SET revoked_at = $2, revoked_because = $3 WHERE kid = $1",
            kid,
            now,
            because,
        )
        return True

    # The issuer's keys.

    async def lock_issuer_keys(self) -> None:
        await self.connection.execute(_ISSUER_KEYS_LOCK)

    async def issuer_keys(self) -> list[SigningKey]:
        return await issuer_keys(self.connection, self.sealer)

    async def insert_issuer_key(self, key: SigningKey) -> None:
        await self.connection.execute(
            "INSERT INTO issuer_keys (kid, private_jwk, public_jwk, not_before)"
            " VALUES ($1, $2, $3, $4)",
            key.kid,
            self.sealer.seal(key.private_jwk, binding=_issuer_key_binding(key.kid)),
            key.public_jwk,
            key.not_before,
        )

    async def retire_issuer_key(self, kid: str, retired_at: datetime) -> None:
        await self.connection.execute(
            "UPDATE issuer_keys SET retired_at = $2 WHERE kid = $1", kid, retired_at
        )

    async def seal_plain_issuer_keys(self) -> int:
        return await seal_plain_issuer_keys(self.connection, self.sealer)


# Outside a transaction -------------------------------------------------------------------


class IdentityStatements(_OptimisticWrites):
    """Identity's storage outside a transaction (`use_cases.ports.Statements`): each call
    is one statement, atomic by itself.

    A pooled connection is taken at the first call (so whatever a use case does before,
    such as making the key ring ready, holds none) and kept for the calls that follow, a
    transaction on it included; it goes back to the pool when that transaction ends, on
    `release()`, or at the end of `statements()`.
    """

    def __init__(self, pool: Pool, sealer: Sealer | None = None) -> None:
        self._pool = pool
        self._sealer = sealer
        self._held: Connection | None = None

    async def _connection(self) -> Connection:
        if self._held is None:
            self._held = await self._pool.acquire()
        return self._held

    async def release(self) -> None:
        if self._held is not None:
            held, self._held = self._held, None
            await self._pool.release(held)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[IdentityStorage]:
        connection = await self._connection()
        try:
            async with connection.transaction():
                yield IdentityStorage(connection, self._sealer)
        finally:
            await self.release()

    async def attempt_state(self, citizen: str, network: str) -> AttemptState | None:
        return await _attempt_state(await self._connection(), citizen, network, lock=False)

    async def sign_ins(self, citizen: str, limit: int) -> list[dict[str, Any]]:
        rows = await (await self._connection()).fetch(
            "SELECT at, client_address, channel, user_agent, outcome, reason FROM sign_ins"
            " WHERE citizen = $1 ORDER BY at DESC, id DESC LIMIT $2",
            citizen,
            limit,
        )
        return [dict(row) for row in rows]

    async def family_revoked(self, family_id: uuid.UUID) -> bool:
        revoked = await (await self._connection()).fetchval(
            "SELECT revoked_at IS NOT NULL FROM refresh_families WHERE id = $1", family_id
        )
        return bool(revoked)

    async def client(self, client_id: str) -> AgencyClient | None:
        row = await (await self._connection()).fetchrow(
            "SELECT c.client_id, c.agency, c.name, c.secret_hash, c.scopes, c.created_at,"
            " c.revoked_at, a.active AS agency_active"
            " FROM agency_clients c JOIN agencies a ON a.code = c.agency WHERE c.client_id = $1",
            client_id,
        )
        if row is None:
            return None
        return AgencyClient(
            client_id=row["client_id"],
            agency=row["agency"],
            secret_hash=row["secret_hash"],
            scopes=frozenset(row["scopes"]),
            revoked_at=row["revoked_at"],
            agency_active=row["agency_active"],
        )

    async def update_client_secret(self, client_id: str, secret_hash: str) -> None:
        """Store a rehashed secret (argon2 parameters raised since it was hashed)."""
        await (await self._connection()).execute(
            "UPDATE agency_clients SET secret_hash = $2 WHERE client_id = $1",
            client_id,
            secret_hash,
        )

    async def clients_of(self, agency: str) -> list[dict[str, Any]]:
        rows = await (await self._connection()).fetch(
            "SELECT client_id, agency, name, scopes, created_at, revoked_at FROM agency_clients"
            " WHERE agency = $1 ORDER BY created_at",
            agency,
        )
        return [dict(row) for row in rows]

    async def agency_keys(self, agency: str) -> list[dict[str, Any]]:
        rows = await (await self._connection()).fetch(
            "SELECT kid, algorithm, jwk, not_before, expires_at, created_at, revoked_at,"
            " revoked_because FROM agency_keys WHERE agency = $1 ORDER BY created_at",
            agency,
        )
        return [dict(row) for row in rows]


@asynccontextmanager
async def statements(pool: Pool, sealer: Sealer | None = None) -> AsyncIterator[IdentityStatements]:
    """Identity's storage outside a transaction, for one use case."""
    work = IdentityStatements(pool, sealer)
    try:
        yield work
    finally:
        await work.release()
