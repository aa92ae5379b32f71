"""The identity service's storage: its own Postgres schema `identity`, reached with asyncpg.

The schema is created by `migrations/`; besides the service's tables it holds the outbox
and the inbox every service keeps (`shared/migrations`). Every function takes the
connection of the caller's transaction; those that lock rows say so. The writes of a
successful attempt are `Change`s, written by `shared.outbox.enqueue` with their event in
one statement, guarded by the citizen's attempt version.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from services.identity.domain.codes import Counter, LockScope
from services.identity.domain.tokens import SigningKey
from shared.db import Connection
from shared.outbox import Change
from shared.sealing import Sealer


@dataclass(frozen=True)
class CitizenRecord:
    citizen: str
    mobile: str
    birth_date: date
    province: str


async def insert_citizen(
    connection: Connection,
    *,
    citizen: str,
    mobile: str,
    first_name: str,
    last_name: str,
    birth_date: date,
    province: str,
    now: datetime,
) -> bool:
    """Add a citizen; False if one with this pseudonym exists already."""
    inserted = await connection.fetchval(
        "INSERT INTO citizens (citizen, mobile, first_name, last_name, birth_date, province,"
        " registered_at) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (citizen) DO NOTHING RETURNING true",
        citizen,
        mobile,
        first_name,
        last_name,
        birth_date,
        province,
        now,
    )
    return bool(inserted)


# A citizen's attempts ------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    id: uuid.UUID
    code_hash: bytes
    created_at: datetime
    expires_at: datetime
    attempts: int
    open: bool


@dataclass(frozen=True)
class AttemptState:
    """What judging a citizen's code request or sign-in needs, read in one round trip."""

    record: CitizenRecord
    version: int
    citizen_counter: Counter | None
    address_counter: Counter | None
    newest_challenge: Challenge | None


def _counter(row: Any, prefix: str) -> Counter | None:
    if row[f"{prefix}_window_started"] is None:
        return None
    return Counter(
        row[f"{prefix}_failures"], row[f"{prefix}_window_started"], row[f"{prefix}_locked_until"]
    )


async def attempt_state(
    connection: Connection, citizen_id: str, client_address: str, *, lock: bool
) -> AttemptState | None:
    """The citizen, their counter, the address's counter and their newest code; None if the
    citizen is not registered.

    With `lock`, the citizen's row is locked to the end of the caller's transaction (and
    their `version` moved on): attempts judged under the lock are judged one after the
    other, and the citizen's counter and codes change only under it or by a write whose
    version guard holds (`opening_challenge`, `successful_sign_in`). Without, a plain
    read. The address's counter is only read here; it is locked when a failure is
    counted against it (`lock_counter`). One round trip either way (migration 0003).
    """
    row = await connection.fetchrow(
        "SELECT * FROM lock_attempt_state($1, $2)"
        if lock
        else "SELECT * FROM attempt_state($1, $2)",
        citizen_id,
        client_address,
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


async def lock_counter(
    connection: Connection, scope: LockScope, subject: str, now: datetime
) -> Counter:
    """A subject's counter, created if missing, locked FOR UPDATE."""
    await connection.execute(
        "INSERT INTO attempt_counters (scope, subject, window_started) VALUES ($1, $2, $3)"
        " ON CONFLICT (scope, subject) DO NOTHING",
        scope,
        subject,
        now,
    )
    row = await connection.fetchrow(
        "SELECT failures, window_started, locked_until FROM attempt_counters"
        " WHERE scope = $1 AND subject = $2 FOR UPDATE",
        scope,
        subject,
    )
    assert row is not None
    return Counter(row["failures"], row["window_started"], row["locked_until"])


async def peek_counter(connection: Connection, scope: LockScope, subject: str) -> Counter | None:
    """A subject's counter as it is now, without locking it."""
    row = await connection.fetchrow(
        "SELECT failures, window_started, locked_until FROM attempt_counters"
        " WHERE scope = $1 AND subject = $2",
        scope,
        subject,
    )
    return Counter(row["failures"], row["window_started"], row["locked_until"]) if row else None


async def save_counter(
    connection: Connection, scope: LockScope, subject: str, counter: Counter
) -> None:
    """Write a counter the caller holds the lock for (its own row, or its citizen's)."""
    await connection.execute(
        "INSERT INTO attempt_counters (scope, subject, failures, window_started, locked_until)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (scope, subject) DO UPDATE"
        " SET failures = $3, window_started = $4, locked_until = $5",
        scope,
        subject,
        counter.failures,
        counter.window_started,
        counter.locked_until,
    )


# One-time codes ---------------------------------------------------------------------


def _moved_on(citizen: str, version: str) -> str:
    """The guard of a write judged on `version`: it moves the citizen's version on, and
    finds no row (so nothing is written) if another attempt moved it first."""
    return (
        "attempt AS (UPDATE citizens SET attempt_version = attempt_version + 1"
        f" WHERE citizen = {citizen} AND attempt_version = {version} RETURNING 1)"
    )


def opening_challenge(
    state: AttemptState,
    *,
    challenge_id: uuid.UUID,
    code_hash: bytes,
    now: datetime,
    expires_at: datetime,
) -> Change:
    """A new code for the citizen; any code still open for them is closed (superseded).

    Written with the event that sends the code (`shared.outbox.enqueue(..., along=...)`),
    only if the citizen's attempts are still at `state.version`.
    """
    return Change(
        _moved_on("$2", "$6") + ","
        " superseded AS (UPDATE code_challenges SET closed_at = $4,"
        " closed_because = 'superseded' WHERE citizen = $2 AND closed_at IS NULL"
        " AND EXISTS (SELECT 1 FROM attempt)),"
        " opened AS (INSERT INTO code_challenges (id, citizen, code_hash, created_at,"
        " expires_at) SELECT $1, $2, $3, $4, $5 FROM attempt)",
        (challenge_id, state.record.citizen, code_hash, now, expires_at, state.version),
        guard="attempt",
    )


async def count_attempt(connection: Connection, challenge_id: uuid.UUID) -> None:
    await connection.execute(
        "UPDATE code_challenges SET attempts = attempts + 1 WHERE id = $1", challenge_id
    )


async def close_challenge(
    connection: Connection, challenge_id: uuid.UUID, now: datetime, because: str
) -> None:
    await connection.execute(
        "UPDATE code_challenges SET closed_at = $2, closed_because = $3 WHERE id = $1",
        challenge_id,
        now,
        because,
    )


# Sign-in history --------------------------------------------------------------------


@dataclass(frozen=True)
class SignInRecord:
    """One line of a citizen's sign-in history."""

    citizen: str
    at: datetime
    client_address: str
    channel: str
    user_agent: str | None
    outcome: str
    reason: str | None

    def values(self) -> tuple[Any, ...]:
        return (
            self.citizen,
            self.at,
            self.client_address,
            self.channel,
            self.user_agent,
            self.outcome,
            self.reason,
        )


_SIGN_IN_COLUMNS = "citizen, at, client_address, channel, user_agent, outcome, reason"


async def record_sign_in(connection: Connection, record: SignInRecord) -> None:
    await connection.execute(
        f"INSERT INTO sign_ins ({_SIGN_IN_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        *record.values(),
    )


def successful_sign_in(
    state: AttemptState, *, used_challenge: uuid.UUID, session: NewSession, record: SignInRecord
) -> Change:
    """Close the code that was used, open the session with its first refresh token and add
    the history line: the whole write of a sign-in, written with its event
    (`shared.outbox.enqueue(..., along=...)`), only if the citizen's attempts are still at
    `state.version`."""
    return Change(
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
            *record.values(),
            session.family_id,
            session.level_of_assurance,
            session.first_token_hash,
            session.created_at,
            session.expires_at,
            session.channel,
            state.version,
        ),
        guard="attempt",
    )


async def sign_ins(connection: Connection, citizen_id: str, limit: int) -> list[dict[str, Any]]:
    rows = await connection.fetch(
        "SELECT at, client_address, channel, user_agent, outcome, reason FROM sign_ins"
        " WHERE citizen = $1 ORDER BY at DESC, id DESC LIMIT $2",
        citizen_id,
        limit,
    )
    return [dict(row) for row in rows]


# Issuer keys ------------------------------------------------------------------------


# Private keys are sealed with the data key, bound to their kid (shared/sealing.py).


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


async def insert_issuer_key(connection: Connection, key: SigningKey, sealer: Sealer) -> None:
    await connection.execute(
        "INSERT INTO issuer_keys (kid, private_jwk, public_jwk, not_before)"
        " VALUES ($1, $2, $3, $4)",
        key.kid,
        sealer.seal(key.private_jwk, binding=_issuer_key_binding(key.kid)),
        key.public_jwk,
        key.not_before,
    )


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


async def retire_issuer_key(connection: Connection, kid: str, retired_at: datetime) -> None:
    await connection.execute(
        "UPDATE issuer_keys SET retired_at = $2 WHERE kid = $1", kid, retired_at
    )


# Refresh tokens ---------------------------------------------------------------------


@dataclass(frozen=True)
class NewSession:
    """A sign-in session (refresh-token family) about to be stored, with its first token."""

    family_id: uuid.UUID
    citizen: str
    channel: str
    level_of_assurance: int
    first_token_hash: bytes
    created_at: datetime
    expires_at: datetime


async def insert_refresh_token(
    connection: Connection,
    *,
    token_hash: bytes,
    family_id: uuid.UUID,
    now: datetime,
    expires_at: datetime,
) -> None:
    await connection.execute(
        "INSERT INTO refresh_tokens (token_hash, family_id, issued_at, expires_at)"
        " VALUES ($1, $2, $3, $4)",
        token_hash,
        family_id,
        now,
        expires_at,
    )


@dataclass(frozen=True)
class RefreshToken:
    token_hash: bytes
    family_id: uuid.UUID
    expires_at: datetime
    rotated_at: datetime | None
    citizen: str
    channel: str
    level_of_assurance: int
    family_revoked_at: datetime | None


async def lock_refresh_token(connection: Connection, token_hash: bytes) -> RefreshToken | None:
    """The token and its family, both locked FOR UPDATE (one rotation at a time per family)."""
    row = await connection.fetchrow(
        "SELECT t.token_hash, t.family_id, t.expires_at, t.rotated_at, f.citizen, f.channel,"
        " f.level_of_assurance, f.revoked_at AS family_revoked_at"
        " FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id"
        " WHERE t.token_hash = $1 FOR UPDATE",
        token_hash,
    )
    return RefreshToken(**dict(row)) if row else None


async def rotate_refresh_token(connection: Connection, token_hash: bytes, now: datetime) -> None:
    await connection.execute(
        "UPDATE refresh_tokens SET rotated_at = $2 WHERE token_hash = $1", token_hash, now
    )


async def revoke_family(
    connection: Connection, family_id: uuid.UUID, now: datetime, because: str
) -> bool:
    """Revoke a sign-in session; False if it was revoked already."""
    revoked = await connection.fetchval(
        "UPDATE refresh_families SET revoked_at = $2, revoked_because = $3"
        " WHERE id = $1 AND revoked_at IS NULL RETURNING true",
        family_id,
        now,
        because,
    )
    return bool(revoked)


async def family_revoked(connection: Connection, family_id: uuid.UUID) -> bool:
    revoked = await connection.fetchval(
        "SELECT revoked_at IS NOT NULL FROM refresh_families WHERE id = $1", family_id
    )
    return bool(revoked)


# Agencies ---------------------------------------------------------------------------


async def upsert_agency(connection: Connection, record: dict[str, Any]) -> None:
    """Keep the newest revision of an agency; an older or equal one changes nothing."""
    await connection.execute(
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


async def agency(connection: Connection, code: str) -> dict[str, Any] | None:
    row = await connection.fetchrow("SELECT * FROM agencies WHERE code = $1", code)
    return dict(row) if row else None


async def insert_client(
    connection: Connection,
    *,
    client_id: str,
    agency_code: str,
    name: str,
    secret_hash: str,
    scopes: list[str],
    now: datetime,
) -> None:
    await connection.execute(
        "INSERT INTO agency_clients (client_id, agency, name, secret_hash, scopes, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)",
        client_id,
        agency_code,
        name,
        secret_hash,
        scopes,
        now,
    )


async def client(connection: Connection, client_id: str) -> dict[str, Any] | None:
    row = await connection.fetchrow(
        "SELECT c.client_id, c.agency, c.name, c.secret_hash, c.scopes, c.created_at,"
        " c.revoked_at, a.active AS agency_active"
        " FROM agency_clients c JOIN agencies a ON a.code = c.agency WHERE c.client_id = $1",
        client_id,
    )
    return dict(row) if row else None


async def clients_of(connection: Connection, agency_code: str) -> list[dict[str, Any]]:
    rows = await connection.fetch(
        "SELECT client_id, agency, name, scopes, created_at, revoked_at FROM agency_clients"
        " WHERE agency = $1 ORDER BY created_at",
        agency_code,
    )
    return [dict(row) for row in rows]


async def revoke_client(
    connection: Connection, agency_code: str, client_id: str, now: datetime
) -> bool:
    revoked = await connection.fetchval(
        "UPDATE agency_clients SET revoked_at = coalesce(revoked_at, $3)"
        " WHERE agency = $1 AND client_id = $2 RETURNING true",
        agency_code,
        client_id,
        now,
    )
    return bool(revoked)


async def update_client_secret(connection: Connection, client_id: str, secret_hash: str) -> None:
    """Store a rehashed secret (argon2 parameters raised since it was hashed)."""
    await connection.execute(
        "UPDATE agency_clients SET secret_hash = $2 WHERE client_id = $1", client_id, secret_hash
    )


async def insert_agency_key(
    connection: Connection,
    *,
    kid: str,
    agency_code: str,
    algorithm: str,
    jwk: dict[str, Any],
    not_before: datetime,
    expires_at: datetime | None,
    registered_by: str,
) -> bool:
    """Register an agency's key; False if the kid is taken."""
    inserted = await connection.fetchval(
        "INSERT INTO agency_keys (kid, agency, algorithm, jwk, not_before, expires_at,"
        " registered_by) VALUES ($1, $2, $3, $4, $5, $6, $7)"
        " ON CONFLICT (kid) DO NOTHING RETURNING true",
        kid,
        agency_code,
        algorithm,
        jwk,
        not_before,
        expires_at,
        registered_by,
    )
    return bool(inserted)


async def revoke_agency_key(
    connection: Connection, agency_code: str, kid: str, now: datetime, because: str
) -> bool | None:
    """Revoke a key of the agency: True if revoked now, False if it was already, None if unknown."""
    row = await connection.fetchrow(
        "SELECT revoked_at FROM agency_keys WHERE agency = $1 AND kid = $2 FOR UPDATE",
        agency_code,
        kid,
    )
    if row is None:
        return None
    if row["revoked_at"] is not None:
        return False
    await connection.execute(
        "UPDATE agency_keys SET revoked_at = $2, revoked_because = $3 WHERE kid = $1",
        kid,
        now,
        because,
    )
    return True


async def agency_keys(connection: Connection, agency_code: str) -> list[dict[str, Any]]:
    rows = await connection.fetch(
        "SELECT kid, algorithm, jwk, not_before, expires_at, created_at, revoked_at,"
        " revoked_because FROM agency_keys WHERE agency = $1 ORDER BY created_at",
        agency_code,
    )
    return [dict(row) for row in rows]
