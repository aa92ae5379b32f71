"""The exchange service's storage: its own Postgres schema `exchange`, reached with asyncpg.

The schema is created by `migrations/`; besides the service's tables it holds the outbox
and the inbox every service keeps (`shared/migrations`). Every function takes the
connection of the caller's transaction: what they write commits with the caller's events.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from joserfc.jwk import ECKey, Key, import_key

from services.exchange.domain import (
    AccessRight,
    Agency,
    AgencyKey,
    AuditEntry,
    DataService,
    chain_hash,
)
from shared.db import Connection, Pool
from shared.events.catalog import AgencyRecorded
from shared.events.exchange import AccessGranted, DataServiceRegistered
from shared.events.identity import AgencyKeyPublished, AgencyKeyRevoked
from shared.sealing import Sealer
from shared.signing import generate_key

Record = Any  # an asyncpg Record: read by column name


# Projections of other services' topics.


async def record_agency(connection: Connection, agency: AgencyRecorded) -> None:
    """Keep the agency's latest revision (a replayed older record changes nothing)."""
    await connection.execute(
        "INSERT INTO agencies (code, name_fa, name_en, active, exchange_connected_since,"
        " revision) VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (code) DO UPDATE SET name_fa = excluded.name_fa,"
        " name_en = excluded.name_en, active = excluded.active,"
        " exchange_connected_since = excluded.exchange_connected_since,"
        " revision = excluded.revision WHERE agencies.revision < excluded.revision",
        agency.code,
        agency.name_fa,
        agency.name_en,
        agency.active,
        agency.exchange_connected_since,
        agency.revision,
    )


async def record_agency_key(connection: Connection, key: AgencyKeyPublished) -> bool:
    """Keep a published key; a key already revoked stays revoked.

    A kid, once known, stays with its agency and its key: a record that would move it to
    another agency or another key changes nothing and returns False. Its validity dates
    may change; a revocation that arrived first gets its key filled in.
    """
    kept = await connection.fetchval(
        "INSERT INTO agency_keys (kid, agency, algorithm, jwk, not_before, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6)"
        " ON CONFLICT (kid) DO UPDATE SET algorithm = excluded.algorithm, jwk = excluded.jwk,"
        " not_before = excluded.not_before, expires_at = excluded.expires_at"
        " WHERE agency_keys.agency = excluded.agency AND (agency_keys.jwk IS NULL"
        " OR (agency_keys.algorithm = excluded.algorithm AND agency_keys.jwk = excluded.jwk))"
        " RETURNING true",
        key.kid,
        key.agency,
        key.algorithm,
        key.jwk,
        key.not_before,
        key.expires_at,
    )
    return bool(kept)


async def revoke_agency_key(
    connection: Connection, revoked: AgencyKeyRevoked, at: datetime
) -> bool:
    """Revoke a key (the earliest revocation wins); False if the kid is another agency's."""
    kept = await connection.fetchval(
        "INSERT INTO agency_keys (kid, agency, revoked_at, revoked_reason) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (kid) DO UPDATE SET revoked_at = LEAST(agency_keys.revoked_at,"
        " excluded.revoked_at), revoked_reason = COALESCE(agency_keys.revoked_reason,"
        " excluded.revoked_reason) WHERE agency_keys.agency = excluded.agency"
        " RETURNING true",
        revoked.kid,
        revoked.agency,
        at,
        revoked.reason,
    )
    return bool(kept)


async def agency(connection: Connection, code: str) -> Agency | None:
    row = await connection.fetchrow("SELECT code, active FROM agencies WHERE code = $1", code)
    return None if row is None else Agency(row["code"], row["active"])


async def agency_names(connection: Connection, codes: Sequence[str]) -> dict[str, tuple[str, str]]:
    rows = await connection.fetch(
        "SELECT code, name_fa, name_en FROM agencies WHERE code = ANY($1::text[])", list(codes)
    )
    return {row["code"]: (row["name_fa"], row["name_en"]) for row in rows}


async def agency_key(connection: Connection, kid: str) -> AgencyKey | None:
    row = await connection.fetchrow("SELECT * FROM agency_keys WHERE kid = $1", kid)
    return None if row is None else _key_from(row)


def _key_from(row: Any) -> AgencyKey:
    return AgencyKey(
        kid=row["kid"],
        agency=row["agency"],
        algorithm=row["algorithm"],
        jwk=row["jwk"],
        not_before=_moment(row["not_before"]),
        expires_at=_moment(row["expires_at"]),
        revoked_at=_moment(row["revoked_at"]),
    )


def _moment(value: Any) -> datetime | None:
    """A timestamp from a row, or from its JSON form (to_jsonb writes ISO 8601)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


async def request_context(
    connection: Connection,
    kid: str,
    consumer: str,
    data_service_id: str,
    transaction_id: uuid.UUID,
) -> tuple[bool, AgencyKey | None, Agency | None, DataService | None, list[AccessRight]]:
    """Everything a request's authorisation reads, and whether its id is taken: one trip."""
    row = await connection.fetchrow(
        "SELECT (SELECT to_jsonb(k) FROM agency_keys k WHERE kid = $1) AS key,"
        " (SELECT to_jsonb(a) FROM agencies a WHERE code = $2) AS agency,"
        " (SELECT to_jsonb(d) FROM data_services d WHERE data_service = $3) AS service,"
        " (SELECT jsonb_agg(r ORDER BY r.valid_from) FROM access_rights r"
        "  WHERE consumer = $2 AND data_service = $3) AS rights,"
        " EXISTS (SELECT 1 FROM transactions WHERE transaction_id = $4) AS taken",
        kid,
        consumer,
        data_service_id,
        transaction_id,
    )
    return (
        row["taken"],
        None if row["key"] is None else _key_from(row["key"]),
        None if row["agency"] is None else Agency(row["agency"]["code"], row["agency"]["active"]),
        None if row["service"] is None else _data_service(row["service"]),
        [_right(right) for right in row["rights"] or []],
    )


async def answer_context(
    connection: Connection, transaction_id: uuid.UUID, kid: str
) -> tuple[Record, AgencyKey | None, dict[str, Any] | None]:
    """A transaction (locked), the key an answer names and the response schema: one trip."""
    row = await connection.fetchrow(
        "SELECT t.*, to_jsonb(k) AS signing_key, d.response_schema FROM transactions t"
        " LEFT JOIN agency_keys k ON k.kid = $2"
        " LEFT JOIN data_services d ON d.data_service = t.data_service"
        " WHERE t.transaction_id = $1 FOR UPDATE OF t",
        transaction_id,
        kid,
    )
    if row is None:
        return None, None, None
    key = None if row["signing_key"] is None else _key_from(row["signing_key"])
    return row, key, row["response_schema"]


# Data services and access rights: the exchange's own registers.


def _data_service(row: Record) -> DataService:
    return DataService(
        data_service=row["data_service"],
        version=row["version"],
        provider=row["provider"],
        request_schema=row["request_schema"],
        response_schema=row["response_schema"],
        timeout_ms=row["timeout_ms"],
        purposes=tuple(row["purposes"]),
        personal_data=row["personal_data"],
        active=row["active"],
    )


async def data_service(connection: Connection, data_service_id: str) -> DataService | None:
    row = await connection.fetchrow(
        "SELECT * FROM data_services WHERE data_service = $1", data_service_id
    )
    return None if row is None else _data_service(row)


async def data_services(connection: Connection, provider: str | None) -> list[DataService]:
    rows = await connection.fetch(
        "SELECT * FROM data_services WHERE $1::text IS NULL OR provider = $1 ORDER BY data_service",
        provider,
    )
    return [_data_service(row) for row in rows]


async def save_data_service(connection: Connection, service: DataServiceRegistered) -> None:
    await connection.execute(
        "INSERT INTO data_services (data_service, version, provider, name_fa, name_en,"
        " request_schema, response_schema, timeout_ms, purposes, personal_data, active)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        " ON CONFLICT (data_service) DO UPDATE SET version = excluded.version,"
        " name_fa = excluded.name_fa, name_en = excluded.name_en,"
        " request_schema = excluded.request_schema, response_schema = excluded.response_schema,"
        " timeout_ms = excluded.timeout_ms, purposes = excluded.purposes,"
        " personal_data = excluded.personal_data, active = excluded.active, updated_at = now()",
        service.data_service,
        service.version,
        service.provider,
        service.name_fa,
        service.name_en,
        service.request_schema,
        service.response_schema,
        service.timeout_ms,
        service.purposes,
        service.personal_data,
        service.active,
    )


def _right(row: Record) -> AccessRight:
    valid_from = _moment(row["valid_from"])
    assert valid_from is not None
    return AccessRight(
        right_id=uuid.UUID(str(row["right_id"])),
        consumer=row["consumer"],
        data_service=row["data_service"],
        purposes=tuple(row["purposes"]),
        legal_basis=row["legal_basis"],
        valid_from=valid_from,
        valid_until=_moment(row["valid_until"]),
        revoked_at=_moment(row["revoked_at"]),
    )


async def rights_of(
    connection: Connection, consumer: str, data_service_id: str
) -> list[AccessRight]:
    rows = await connection.fetch(
        "SELECT * FROM access_rights WHERE consumer = $1 AND data_service = $2 ORDER BY valid_from",
        consumer,
        data_service_id,
    )
    return [_right(row) for row in rows]


async def access_right(connection: Connection, right_id: uuid.UUID) -> AccessRight | None:
    row = await connection.fetchrow("SELECT * FROM access_rights WHERE right_id = $1", right_id)
    return None if row is None else _right(row)


async def save_right(connection: Connection, right: AccessGranted) -> None:
    await connection.execute(
        "INSERT INTO access_rights (right_id, consumer, data_service, purposes, legal_basis,"
        " valid_from, valid_until) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        right.right_id,
        right.consumer,
        right.data_service,
        right.purposes,
        right.legal_basis,
        right.valid_from,
        right.valid_until,
    )


async def revoke_right(
    connection: Connection, right_id: uuid.UUID, reason: str, at: datetime
) -> bool:
    """Mark a right revoked; False if it does not exist or already was."""
    done = await connection.fetchval(
        "UPDATE access_rights SET revoked_at = $2, revoked_reason = $3"
        " WHERE right_id = $1 AND revoked_at IS NULL RETURNING true",
        right_id,
        at,
        reason,
    )
    return bool(done)


# The exchange's own signing key: its private half sealed with the data key, bound to its
# kid (shared/sealing.py). The process learns the data key once, from its settings.

_signing_key: tuple[str, Key] | None = None
_sealer: Sealer | None = None


def seal_signing_keys_with(sealer: Sealer) -> None:
    """The data key this process seals and opens the exchange's signing keys with."""
    global _sealer, _signing_key
    _sealer, _signing_key = sealer, None


def _sealing() -> Sealer:
    if _sealer is None:
        raise RuntimeError("no data key: call storage.seal_signing_keys_with() at start")
    return _sealer


def _signing_key_binding(kid: str) -> str:
    return f"exchange.signing_keys:{kid}"


async def signing_key(connection: Connection) -> tuple[str, Key]:
    """The exchange's signing key (kid, private key), created on first use and kept."""
    global _signing_key
    if _signing_key is None:
        kid, private = await _load_signing_key(connection, _sealing())
        _signing_key = (kid, import_key(private))
    return _signing_key


async def _load_signing_key(connection: Connection, sealer: Sealer) -> tuple[str, dict[str, Any]]:
    """The newest signing key, opened; made if there is none. Keys an older release
    stored in the clear are sealed on the way."""
    async with connection.transaction():
        # Two processes starting together must not each make a key.
        await connection.execute("SELECT pg_advisory_xact_lock(hashtext('exchange-signing-key'))")
        for row in await connection.fetch(
            "SELECT kid, private_jwk FROM signing_keys WHERE NOT private_jwk ? 'sealed'"
        ):
            await connection.execute(
                "UPDATE signing_keys SET private_jwk = $2 WHERE kid = $1",
                row["kid"],
                sealer.seal(row["private_jwk"], binding=_signing_key_binding(row["kid"])),
            )
        row = await connection.fetchrow(
            "SELECT kid, private_jwk FROM signing_keys ORDER BY created_at DESC LIMIT 1"
        )
        if row is not None:
            kid: str = row["kid"]
            return kid, sealer.open(row["private_jwk"], binding=_signing_key_binding(kid))
        key: ECKey = generate_key()
        kid = f"exchange-{datetime.now(UTC):%Y%m%d}-{secrets.token_hex(4)}"
        private = dict(key.as_dict(private=True))
        await connection.execute(
            "INSERT INTO signing_keys (kid, private_jwk) VALUES ($1, $2)",
            kid,
            sealer.seal(private, binding=_signing_key_binding(kid)),
        )
        return kid, private


async def public_signing_keys(pool: Pool) -> list[tuple[str, dict[str, Any]]]:
    """Every signing key of the exchange, opened (kid, private JWK to strip)."""
    sealer = _sealing()
    rows = await pool.fetch("SELECT kid, private_jwk FROM signing_keys ORDER BY created_at")
    return [
        (row["kid"], sealer.open(row["private_jwk"], binding=_signing_key_binding(row["kid"])))
        for row in rows
    ]


# Transactions.


TRANSACTION_COLUMNS = (
    "transaction_id",
    "consumer",
    "provider",
    "data_service",
    "purpose",
    "citizen",
    "personal_data",
    "status",
    "reason",
    "request_bytes",
    "requested_at",
    "forwarded_at",
    "deadline",
)
COMPLETION_COLUMNS = (
    "status",
    "reason",
    "response_bytes",
    "responded_at",
    "completed_at",
    "completion",
)


async def insert_transactions(connection: Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Record new transactions at once; a taken id fails the whole call (unique key)."""
    if not rows:
        return
    placeholders = ", ".join(f"${i}" for i in range(1, len(TRANSACTION_COLUMNS) + 1))
    await connection.executemany(
        f"INSERT INTO transactions ({', '.join(TRANSACTION_COLUMNS)}) VALUES ({placeholders})",
        [tuple(row.get(name) for name in TRANSACTION_COLUMNS) for row in rows],
    )


async def complete_transactions(
    connection: Connection, completions: Sequence[tuple[uuid.UUID, dict[str, Any]]]
) -> None:
    """Make transactions final: (id, {column: value for COMPLETION_COLUMNS}) each."""
    if not completions:
        return
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(COMPLETION_COLUMNS, 2))
    await connection.executemany(
        f"UPDATE transactions SET {assignments} WHERE transaction_id = $1",
        [(tid, *(values.get(name) for name in COMPLETION_COLUMNS)) for tid, values in completions],
    )


async def transaction_for_update(connection: Connection, transaction_id: uuid.UUID) -> Record:
    return await connection.fetchrow(
        "SELECT * FROM transactions WHERE transaction_id = $1 FOR UPDATE", transaction_id
    )


async def transaction(pool: Pool | Connection, transaction_id: uuid.UUID) -> Record:
    return await pool.fetchrow(
        "SELECT * FROM transactions WHERE transaction_id = $1", transaction_id
    )


async def complete_transaction(
    connection: Connection, transaction_id: uuid.UUID, **values: Any
) -> None:
    assignments = ", ".join(f"{name} = ${i}" for i, name in enumerate(values, start=2))
    await connection.execute(
        f"UPDATE transactions SET {assignments} WHERE transaction_id = $1",
        transaction_id,
        *values.values(),
    )


async def overdue_transactions(connection: Connection, now: datetime, limit: int) -> list[Record]:
    """Pending transactions past their deadline, locked; others' locks are skipped."""
    rows: list[Record] = await connection.fetch(
        "SELECT * FROM transactions WHERE status = 'pending' AND deadline <= $1"
        " ORDER BY deadline LIMIT $2 FOR UPDATE SKIP LOCKED",
        now,
        limit,
    )
    return rows


# The audit log.


async def append_audit(connection: Connection, entry: AuditEntry, at: datetime) -> int:
    """Append a record to the chain, in the caller's transaction; returns its seq.

    The head row is locked until the caller commits, so appends form one line.
    """
    head = await connection.fetchrow("SELECT seq, hash FROM audit_head FOR UPDATE")
    record: dict[str, Any] = {
        "seq": head["seq"] + 1,
        # Postgres keeps microseconds: hash exactly what will be read back.
        "recorded_at": at.astimezone(UTC),
        **{name: getattr(entry, name) for name in entry.__dataclass_fields__},
    }
    record["hash"] = chain_hash(head["hash"], record)
    record["previous_hash"] = head["hash"]
    columns = list(record)
    values = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    # One round trip for the row and the head: the head stays locked for less time.
    await connection.execute(
        f"WITH appended AS (INSERT INTO audit_log ({', '.join(columns)}) VALUES ({values}))"
        f" UPDATE audit_head SET seq = ${columns.index('seq') + 1},"
        f" hash = ${columns.index('hash') + 1}",
        *record.values(),
    )
    seq: int = record["seq"]
    return seq


async def append_audits(
    connection: Connection, entries: Sequence[tuple[AuditEntry, datetime]]
) -> None:
    """Append several records to the chain, in order, under one lock of its head."""
    if not entries:
        return
    head = await connection.fetchrow("SELECT seq, hash FROM audit_head FOR UPDATE")
    seq, previous = head["seq"], head["hash"]
    rows = []
    for entry, at in entries:
        seq += 1
        record: dict[str, Any] = {
            "seq": seq,
            "recorded_at": at.astimezone(UTC),
            **{name: getattr(entry, name) for name in entry.__dataclass_fields__},
        }
        record["hash"] = chain_hash(previous, record)
        record["previous_hash"] = previous
        previous = record["hash"]
        rows.append(record)
    columns = list(rows[0])
    values = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
    await connection.executemany(
        f"INSERT INTO audit_log ({', '.join(columns)}) VALUES ({values})",
        [tuple(row[name] for name in columns) for row in rows],
    )
    await connection.execute("UPDATE audit_head SET seq = $1, hash = $2", seq, previous)


async def audit_records(connection: Connection, after: int, limit: int) -> list[Record]:
    rows: list[Record] = await connection.fetch(
        "SELECT * FROM audit_log WHERE seq > $1 ORDER BY seq LIMIT $2", after, limit
    )
    return rows


async def audit_head(connection: Connection) -> tuple[int, str]:
    row = await connection.fetchrow("SELECT seq, hash FROM audit_head")
    return row["seq"], row["hash"]


async def citizen_requests(connection: Connection, citizen: str, limit: int) -> list[Record]:
    """The latest audit record of each transaction about a citizen, newest first."""
    rows: list[Record] = await connection.fetch(
        "SELECT * FROM (SELECT DISTINCT ON (transaction_id) * FROM audit_log"
        " WHERE citizen = $1 AND kind <> 'late_response'"
        " ORDER BY transaction_id, seq DESC) latest ORDER BY seq DESC LIMIT $2",
        citizen,
        limit,
    )
    return rows
