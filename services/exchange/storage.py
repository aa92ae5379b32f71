"""The exchange service's storage: its own Postgres schema `exchange`, reached with asyncpg.

The schema is created by `migrations/`; besides the service's tables it holds the outbox
and the inbox every service keeps (`shared/migrations`). `ExchangeStorage` is the unit
of work the use cases get (the port `use_cases.ports.ExchangeWork`): it reads and writes
in its caller's transaction, so what it writes commits with the events it announces.
The audit log's own functions stay at module level too: `panjereh audit verify` walks
the chain on a bare connection (services/exchange/audit.py).
"""

from __future__ import annotations

import json
import secrets
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from joserfc.jwk import ECKey, import_key
from opentelemetry import context as otel_context

from services.exchange.domain.audit import GENESIS_HASH, AuditEntry, CheckpointMark, chain_hash
from services.exchange.domain.authorisation import (
    SIGNATURE_PROBLEM_CODES,
    AgencyKey,
    signing_kid,
)
from services.exchange.domain.registers import AccessRight, Agency, DataService
from services.exchange.domain.transaction import ExchangeSigner, Transaction, digest_payload
from services.exchange.use_cases.ports import AnswerContext, RequestContext
from shared.db import Connection
from shared.envelope import Envelope
from shared.events.catalog import AgencyRecorded
from shared.events.exchange import (
    AccessGranted,
    AccessRevoked,
    DataProvided,
    DataRefused,
    DataRequestCompleted,
    DataRequested,
    DataServiceRegistered,
)
from shared.events.identity import AgencyKeyPublished, AgencyKeyRevoked
from shared.sealing import Sealer
from shared.signing import generate_key, public_jwk
from shared.unit_of_work import UnitOfWork

Record = Any  # an asyncpg Record: read by column name

NEW_TRANSACTION_COLUMNS = (
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
    "response_bytes",
    "responded_at",
    "completed_at",
    "completion",
    "payload_digest",
    "completion_event_id",
)
FINAL_COLUMNS = (
    "status",
    "reason",
    "response_bytes",
    "responded_at",
    "completed_at",
    "completion",
    "payload_digest",
    "completion_event_id",
)
INSERT_TRANSACTION = (
    f"INSERT INTO transactions ({', '.join(NEW_TRANSACTION_COLUMNS)})"
    f" VALUES ({', '.join(f'${i}' for i in range(1, len(NEW_TRANSACTION_COLUMNS) + 1))})"
)
FINISH_TRANSACTION = (
    "UPDATE transactions SET"
    f" {', '.join(f'{name} = ${i}' for i, name in enumerate(FINAL_COLUMNS, 2))}"
    " WHERE transaction_id = $1"
)


# What authorising a request reads, for each row of `r` (kid, consumer, data_service,
# transaction_id): in one statement, because it runs for every request.
REQUEST_CONTEXT = (
    "SELECT (SELECT to_jsonb(k) FROM agency_keys k WHERE k.kid = r.kid) AS key,"
    " (SELECT to_jsonb(a) FROM agencies a WHERE a.code = r.consumer) AS agency,"
    " (SELECT to_jsonb(d) FROM data_services d WHERE d.data_service = r.data_service) AS service,"
    " (SELECT jsonb_agg(x ORDER BY x.valid_from) FROM access_rights x"
    "  WHERE x.consumer = r.consumer AND x.data_service = r.data_service) AS rights,"
    " EXISTS (SELECT 1 FROM transactions t WHERE t.transaction_id = r.transaction_id) AS taken"
)
# What checking an answer reads, for each row of `r` (transaction_id, kid) joined to its
# transaction `t`.
ANSWER_CONTEXT = "SELECT t.*, to_jsonb(k) AS signing_key, d.response_schema, r.kid AS asked_kid"
ANSWER_CONTEXT_JOINS = (
    "LEFT JOIN agency_keys k ON k.kid = r.kid"
    " LEFT JOIN data_services d ON d.data_service = t.data_service"
)
# Answered payloads delivered before $1: their outcome's event is published (its outbox
# row stamped before $1, or already deleted), oldest first, up to $2, locked. An outcome
# stored before digests were kept brings its payload, to be digested on the way.
PAYLOADS_DUE = (
    "SELECT t.transaction_id, t.payload_digest,"
    " CASE WHEN t.payload_digest IS NULL THEN t.completion -> 'payload' END AS payload"
    " FROM transactions t"
    " WHERE t.status = 'answered' AND t.payload_removed_at IS NULL AND t.completed_at < $1"
    " AND NOT EXISTS (SELECT 1 FROM outbox o WHERE o.event_id = t.completion_event_id"
    "  AND (o.published_at IS NULL OR o.published_at >= $1))"
    " ORDER BY t.completed_at LIMIT $2 FOR UPDATE OF t SKIP LOCKED"
)
# The payload goes from the stored outcome; its digest stays.
REMOVE_PAYLOADS = (
    "UPDATE transactions t"
    " SET completion = jsonb_set(t.completion, '{payload}', 'null'::jsonb),"
    " payload_digest = x.digest, payload_removed_at = $3"
    " FROM unnest($1::uuid[], $2::text[]) AS x(transaction_id, digest)"
    " WHERE t.transaction_id = x.transaction_id"
)


class ExchangeStorage(UnitOfWork):
    """The exchange's storage on one connection, inside its caller's transaction.

    In bulk (see `gathered`), what transactions' use cases write (new and final
    transactions, late answers, audit records, events) is kept until `flush`, which
    writes each kind in one statement: a poll of requests and answers costs a handful of
    statements however many transactions it holds. Otherwise each write goes at once.
    Either way, reads see what this unit of work wrote before them.
    """

    def __init__(self, connection: Connection, *, bulk: bool = False) -> None:
        super().__init__(connection)
        self._bulk = bulk
        self._opened: list[Transaction] = []
        self._finished: list[Transaction] = []
        self._late: list[Transaction] = []
        self._events: list[Envelope[Any]] = []
        self._parents: list[otel_context.Context | None] = []
        self._audit: list[tuple[AuditEntry, datetime]] = []
        # Each transaction as this unit of work last left it, for the reads that follow.
        self._latest: dict[uuid.UUID, Transaction] = {}
        # What `read_ahead` read, by what each context is asked for (None: no such row).
        self._request_rows: dict[tuple[str, str, str, uuid.UUID], Record] = {}
        self._answer_rows: dict[tuple[uuid.UUID, str], Record | None] = {}

    # Projections of other services' topics.

    async def record_agency(self, agency: AgencyRecorded) -> None:
        await self.connection.execute(
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

    async def record_agency_key(self, key: AgencyKeyPublished) -> bool:
        # Validity dates may change; a revocation that arrived first gets its key filled in.
        kept = await self.connection.fetchval(
            "INSERT INTO agency_keys (kid, agency, algorithm, jwk, not_before, expires_at)"
            " VALUES ($1, $2, $3, $4, $5, $6)"
            " ON CONFLICT (kid) DO UPDATE SET algorithm = excluded.algorithm,"
            " jwk = excluded.jwk, not_before = excluded.not_before,"
            " expires_at = excluded.expires_at"
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

    async def revoke_agency_key(self, revoked: AgencyKeyRevoked, at: datetime) -> bool:
        kept = await self.connection.fetchval(
            "INSERT INTO agency_keys (kid, agency, revoked_at, revoked_reason)"
            " VALUES ($1, $2, $3, $4)"
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

    async def agency(self, code: str) -> Agency | None:
        row = await self.connection.fetchrow(
            "SELECT code, active FROM agencies WHERE code = $1", code
        )
        return None if row is None else Agency(row["code"], row["active"])

    async def agency_names(self, codes: Sequence[str]) -> dict[str, tuple[str, str]]:
        rows = await self.connection.fetch(
            "SELECT code, name_fa, name_en FROM agencies WHERE code = ANY($1::text[])",
            list(codes),
        )
        return {row["code"]: (row["name_fa"], row["name_en"]) for row in rows}

    # Data services and access rights: the exchange's own registers.

    async def data_service(self, data_service: str) -> DataService | None:
        row = await self.connection.fetchrow(
            "SELECT * FROM data_services WHERE data_service = $1", data_service
        )
        return None if row is None else _data_service(row)

    async def data_services(self, provider: str | None) -> list[DataService]:
        rows = await self.connection.fetch(
            "SELECT * FROM data_services WHERE $1::text IS NULL OR provider = $1"
            " ORDER BY data_service",
            provider,
        )
        return [_data_service(row) for row in rows]

    async def save_data_service(self, service: DataServiceRegistered) -> None:
        await self.connection.execute(
            "INSERT INTO data_services (data_service, version, provider, name_fa, name_en,"
            " request_schema, response_schema, timeout_ms, purposes, personal_data, active)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
            " ON CONFLICT (data_service) DO UPDATE SET version = excluded.version,"
            " name_fa = excluded.name_fa, name_en = excluded.name_en,"
            " request_schema = excluded.request_schema,"
            " response_schema = excluded.response_schema, timeout_ms = excluded.timeout_ms,"
            " purposes = excluded.purposes, personal_data = excluded.personal_data,"
            " active = excluded.active, updated_at = now()",
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

    async def access_right(self, right_id: uuid.UUID) -> AccessRight | None:
        row = await self.connection.fetchrow(
            "SELECT * FROM access_rights WHERE right_id = $1", right_id
        )
        return None if row is None else _right(row)

    async def save_right(self, right: AccessGranted) -> None:
        await self.connection.execute(
            "INSERT INTO access_rights (right_id, consumer, data_service, purposes,"
            " legal_basis, valid_from, valid_until, granted_by)"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            right.right_id,
            right.consumer,
            right.data_service,
            right.purposes,
            right.legal_basis,
            right.valid_from,
            right.valid_until,
            right.granted_by,
        )

    async def revoke_right(self, revoked: AccessRevoked, at: datetime) -> bool:
        done = await self.connection.fetchval(
            "UPDATE access_rights SET revoked_at = $2, revoked_reason = $3, revoked_by = $4"
            " WHERE right_id = $1 AND revoked_at IS NULL RETURNING true",
            revoked.right_id,
            at,
            revoked.reason,
            revoked.revoked_by,
        )
        return bool(done)

    # The exchange's own signing keys.

    async def signer(self) -> ExchangeSigner:
        global _signer
        if _signer is None:
            kid, private = await _load_signing_key(self.connection, _sealing())
            _signer = ExchangeSigner(kid, import_key(private))
        return _signer

    async def public_keys(self) -> list[tuple[str, dict[str, Any]]]:
        sealer = _sealing()
        rows = await self.connection.fetch(
            "SELECT kid, private_jwk FROM signing_keys ORDER BY created_at"
        )
        return [
            (
                row["kid"],
                public_jwk(
                    import_key(
                        sealer.open(row["private_jwk"], binding=_signing_key_binding(row["kid"]))
                    )
                ),
            )
            for row in rows
        ]

    # Transactions.

    async def read_ahead(self, events: Sequence[object]) -> None:
        """Read what a poll's requests and answers need, in one statement for each kind
        instead of one per event: `request_context` and `answer_context` then answer
        from what was read. The answers' transactions are locked here, in id order."""
        requests = [event for event in events if isinstance(event, DataRequested)]
        answers = [event for event in events if isinstance(event, DataProvided | DataRefused)]
        if requests:
            asked = [_request_key(request) for request in requests]
            rows = await self.connection.fetch(
                f"{REQUEST_CONTEXT} FROM unnest($1::text[], $2::text[], $3::text[],"
                " $4::uuid[]) WITH ORDINALITY AS r(kid, consumer, data_service, transaction_id, i)"
                " ORDER BY r.i",
                *(list(column) for column in zip(*asked, strict=True)),
            )
            self._request_rows.update(zip(asked, rows, strict=True))
        if answers:
            keys = [_answer_key(answer) for answer in answers]
            rows = await self.connection.fetch(
                f"{ANSWER_CONTEXT} FROM unnest($1::uuid[], $2::text[]) AS r(transaction_id, kid)"
                " JOIN transactions t USING (transaction_id)"
                f" {ANSWER_CONTEXT_JOINS} ORDER BY t.transaction_id FOR UPDATE OF t",
                *(list(column) for column in zip(*keys, strict=True)),
            )
            self._answer_rows.update(dict.fromkeys(keys))
            self._answer_rows.update(
                ((row["transaction_id"], row["asked_kid"]), row) for row in rows
            )

    async def request_context(self, kid: str, request: DataRequested) -> RequestContext:
        key = _request_key(request)
        row = self._request_rows.get(key)
        if row is None:
            row = await self.connection.fetchrow(
                f"{REQUEST_CONTEXT} FROM (VALUES ($1::text, $2::text, $3::text, $4::uuid))"
                " AS r(kid, consumer, data_service, transaction_id)",
                *key,
            )
        agency = row["agency"]
        return RequestContext(
            taken=row["taken"] or request.transaction_id in self._latest,
            key=None if row["key"] is None else _key_from(row["key"]),
            consumer=None if agency is None else Agency(agency["code"], agency["active"]),
            service=None if row["service"] is None else _data_service(row["service"]),
            rights=[_right(right) for right in row["rights"] or []],
        )

    async def answer_context(self, transaction_id: uuid.UUID, kid: str) -> AnswerContext | None:
        if (transaction_id, kid) in self._answer_rows:
            row = self._answer_rows[(transaction_id, kid)]
        else:
            # One round trip, and the row lock that makes one final outcome.
            row = await self.connection.fetchrow(
                f"{ANSWER_CONTEXT} FROM (VALUES ($1::uuid, $2::text)) AS r(transaction_id, kid)"
                f" JOIN transactions t USING (transaction_id) {ANSWER_CONTEXT_JOINS}"
                " FOR UPDATE OF t",
                transaction_id,
                kid,
            )
        if row is None:
            return None
        return AnswerContext(
            transaction=self._latest.get(transaction_id) or _transaction(row),
            key=None if row["signing_key"] is None else _key_from(row["signing_key"]),
            response_schema=row["response_schema"],
        )

    async def overdue_transactions(self, now: datetime, limit: int) -> list[Transaction]:
        rows = await self.connection.fetch(
            "SELECT * FROM transactions WHERE status = 'pending' AND deadline <= $1"
            " ORDER BY deadline LIMIT $2 FOR UPDATE SKIP LOCKED",
            now,
            limit,
        )
        return [_transaction(row) for row in rows]

    async def transaction(self, transaction_id: uuid.UUID) -> Transaction | None:
        if transaction_id in self._latest:
            return self._latest[transaction_id]
        row = await self.connection.fetchrow(
            "SELECT * FROM transactions WHERE transaction_id = $1", transaction_id
        )
        return None if row is None else _transaction(row)

    async def open_transaction(self, transaction: Transaction) -> None:
        self._opened.append(transaction)
        await self._wrote(transaction)

    async def finish_transaction(self, transaction: Transaction) -> None:
        self._finished.append(transaction)
        await self._wrote(transaction)

    async def note_late_response(self, transaction: Transaction) -> None:
        self._late.append(transaction)
        await self._wrote(transaction)

    async def forget_payloads(
        self, *, delivered_before: datetime, now: datetime, limit: int
    ) -> int:
        due = await self.connection.fetch(PAYLOADS_DUE, delivered_before, limit)
        if due:
            await self.connection.execute(
                REMOVE_PAYLOADS,
                [row["transaction_id"] for row in due],
                [row["payload_digest"] or digest_payload(row["payload"]) for row in due],
                now,
            )
        return len(due)

    # The audit log and the outbox.

    async def append_audit(self, entry: AuditEntry, at: datetime) -> None:
        self._audit.append((entry, at))
        await self._wrote()

    async def publish(
        self,
        envelopes: Sequence[Envelope[Any]],
        parents: Sequence[otel_context.Context | None] | None = None,
    ) -> None:
        # Each event's trace continues from the context it was published in, not the flush's.
        self._events.extend(envelopes)
        self._parents.extend(
            parents if parents is not None else [otel_context.get_current()] * len(envelopes)
        )
        await self._wrote()

    async def citizen_requests(self, citizen: str, limit: int) -> list[tuple[AuditEntry, datetime]]:
        rows = await self.connection.fetch(
            "SELECT * FROM (SELECT DISTINCT ON (transaction_id) * FROM audit_log"
            " WHERE citizen = $1 AND kind <> 'late_response' AND outcome <> 'unverified'"
            # Unsigned requests recorded as denied before they were recorded as unverified.
            " AND NOT (kind = 'request' AND outcome = 'denied'"
            "  AND coalesce(split_part(reason, ':', 1), '') = ANY($3::text[]))"
            # A transaction's records may be in different chains: the latest is by time.
            " ORDER BY transaction_id, recorded_at DESC, seq DESC) latest"
            " ORDER BY recorded_at DESC, transaction_id LIMIT $2",
            citizen,
            limit,
            list(SIGNATURE_PROBLEM_CODES),
        )
        return [(_audit_entry(row), row["recorded_at"]) for row in rows]

    # Writing what was gathered.

    async def _wrote(self, transaction: Transaction | None = None) -> None:
        if transaction is not None:
            self._latest[transaction.transaction_id] = transaction
        if not self._bulk:
            await self.flush()

    async def flush(self) -> None:
        """Write what was gathered: transactions, the outbox, then the audit log, so the
        chain's head stays locked only for the end of the transaction."""
        opened, self._opened = self._opened, []
        finished, self._finished = self._finished, []
        late, self._late = self._late, []
        events, self._events = self._events, []
        parents, self._parents = self._parents, []
        audit, self._audit = self._audit, []
        # Each outcome's event id, so that retention can tell when it was delivered.
        outcomes = {
            envelope.payload.transaction_id: envelope.id
            for envelope in events
            if isinstance(envelope.payload, DataRequestCompleted)
        }
        if opened:
            # A taken id fails the whole statement (unique key): the caller retries.
            await self.connection.executemany(
                INSERT_TRANSACTION, [_new_transaction_row(t, outcomes) for t in opened]
            )
        if finished:
            await self.connection.executemany(
                FINISH_TRANSACTION, [_final_row(t, outcomes) for t in finished]
            )
        written = {t.transaction_id for t in (*opened, *finished)}
        unwritten = {tid: eid for tid, eid in outcomes.items() if tid not in written}
        if unwritten:
            # Written one at a time (not in bulk), the transaction went before its events.
            await self.connection.execute(
                "UPDATE transactions SET completion_event_id = x.event_id"
                " FROM unnest($1::uuid[], $2::uuid[]) AS x(transaction_id, event_id)"
                " WHERE transactions.transaction_id = x.transaction_id",
                list(unwritten),
                list(unwritten.values()),
            )
        if late:
            await self.connection.executemany(
                "UPDATE transactions SET late_response_at = $2 WHERE transaction_id = $1",
                [(t.transaction_id, t.late_response_at) for t in late],
            )
        await super().publish(events, parents)
        await append_audits(self.connection, audit)


@asynccontextmanager
async def gathered(connection: Connection) -> AsyncIterator[ExchangeStorage]:
    """A unit of work in bulk on the caller's transaction, flushed when the block ends
    without an error (an error rolls the whole transaction back anyway)."""
    work = ExchangeStorage(connection, bulk=True)
    yield work
    await work.flush()


# Rows to domain values and back.


def _moment(value: Any) -> datetime | None:
    """A timestamp from a row, or from its JSON form (to_jsonb writes ISO 8601)."""
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def _request_key(request: DataRequested) -> tuple[str, str, str, uuid.UUID]:
    kid, _ = signing_kid(request.signature)
    return kid, request.consumer, request.data_service, request.transaction_id


def _answer_key(answer: DataProvided | DataRefused) -> tuple[uuid.UUID, str]:
    kid, _ = signing_kid(answer.signature)
    return answer.transaction_id, kid


def _key_from(row: Record) -> AgencyKey:
    return AgencyKey(
        kid=row["kid"],
        agency=row["agency"],
        algorithm=row["algorithm"],
        jwk=row["jwk"],
        not_before=_moment(row["not_before"]),
        expires_at=_moment(row["expires_at"]),
        revoked_at=_moment(row["revoked_at"]),
    )


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
        granted_by=row["granted_by"],
        revoked_by=row["revoked_by"],
        revoked_reason=row["revoked_reason"],
    )


def _transaction(row: Record) -> Transaction:
    completion = row["completion"]
    return Transaction(
        transaction_id=row["transaction_id"],
        consumer=row["consumer"],
        provider=row["provider"],
        data_service=row["data_service"],
        purpose=row["purpose"],
        citizen=row["citizen"],
        personal_data=row["personal_data"],
        request_bytes=row["request_bytes"],
        requested_at=row["requested_at"],
        status=row["status"],
        reason=row["reason"],
        forwarded_at=row["forwarded_at"],
        deadline=row["deadline"],
        response_bytes=row["response_bytes"],
        responded_at=row["responded_at"],
        completed_at=row["completed_at"],
        late_response_at=row["late_response_at"],
        payload_digest=row["payload_digest"],
        payload_removed_at=row["payload_removed_at"],
        # Stored in its JSON form, read back as such (ids and times as strings).
        completion=None
        if completion is None
        else DataRequestCompleted.model_validate_json(json.dumps(completion)),
    )


def _new_transaction_row(
    transaction: Transaction, outcomes: dict[uuid.UUID, uuid.UUID]
) -> tuple[Any, ...]:
    return tuple(_column(transaction, name, outcomes) for name in NEW_TRANSACTION_COLUMNS)


def _final_row(transaction: Transaction, outcomes: dict[uuid.UUID, uuid.UUID]) -> tuple[Any, ...]:
    return (
        transaction.transaction_id,
        *(_column(transaction, name, outcomes) for name in FINAL_COLUMNS),
    )


def _column(transaction: Transaction, name: str, outcomes: dict[uuid.UUID, uuid.UUID]) -> Any:
    if name == "completion_event_id":
        return outcomes.get(transaction.transaction_id)
    if name == "completion":
        completion = transaction.completion
        return None if completion is None else completion.model_dump(mode="json")
    return getattr(transaction, name)


def _audit_entry(row: Record) -> AuditEntry:
    return AuditEntry(**{name: row[name] for name in AuditEntry.__dataclass_fields__})


# The exchange's own signing key: its private half sealed with the data key, bound to its
# kid (shared/sealing.py). The process learns the data key once, from its settings, and
# keeps the key once loaded.

_signer: ExchangeSigner | None = None
_sealer: Sealer | None = None


def seal_signing_keys_with(sealer: Sealer) -> None:
    """The data key this process seals and opens the exchange's signing keys with."""
    global _sealer, _signer
    _sealer, _signer = sealer, None


def _sealing() -> Sealer:
    if _sealer is None:
        raise RuntimeError("no data key: call storage.seal_signing_keys_with() at start")
    return _sealer


def _signing_key_binding(kid: str) -> str:
    return f"exchange.signing_keys:{kid}"


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


# The audit log.


#: The most chains appends begin: past it, an append waits for a held one. As many as
#: transactions that append at once, at most; a few per exchange process.
MAX_AUDIT_CHAINS = 64


async def _take_a_chain(connection: Connection) -> Record:
    """The head of an open chain that no other transaction holds, locked until the caller
    commits: the lowest free one, a new one when every open chain is held, and past
    `MAX_AUDIT_CHAINS` open ones the lowest, once it is free. So appends never queue
    behind each other, and one exchange alone keeps appending to one chain. A chain a
    restore closed (`restored_at`) takes nothing more; new chains number past it."""
    while True:
        head: Record | None = await connection.fetchrow(
            "SELECT chain, seq, hash FROM audit_head WHERE restored_at IS NULL"
            " ORDER BY chain LIMIT 1 FOR UPDATE SKIP LOCKED"
        )
        if head is not None:
            return head
        # Two appends beginning a chain at once compute the same number: one of them
        # finds it taken (nothing returned) and looks again.
        head = await connection.fetchrow(
            "INSERT INTO audit_head (chain, seq, hash)"
            " SELECT coalesce(max(chain) + 1, 0), 0, $1 FROM audit_head"
            " HAVING count(*) FILTER (WHERE restored_at IS NULL) < $2"
            " ON CONFLICT (chain) DO NOTHING RETURNING chain, seq, hash",
            GENESIS_HASH,
            MAX_AUDIT_CHAINS,
        )
        if head is not None:
            return head
        open_chains = await connection.fetchval(
            "SELECT count(*) FROM audit_head WHERE restored_at IS NULL"
        )
        if open_chains >= MAX_AUDIT_CHAINS:
            waited: Record = await connection.fetchrow(
                "SELECT chain, seq, hash FROM audit_head WHERE restored_at IS NULL"
                " ORDER BY chain LIMIT 1 FOR UPDATE"
            )
            return waited


async def append_audit(connection: Connection, entry: AuditEntry, at: datetime) -> tuple[int, int]:
    """Append a record, in the caller's transaction; returns its chain and seq."""
    return await append_audits(connection, [(entry, at)])


async def append_audits(
    connection: Connection, entries: Sequence[tuple[AuditEntry, datetime]]
) -> tuple[int, int]:
    """Append records, in order, to one chain whose head stays locked until the caller
    commits; returns the chain and the last seq (0, 0 when there is nothing to append)."""
    if not entries:
        return 0, 0
    head = await _take_a_chain(connection)
    chain, seq, previous = head["chain"], head["seq"], head["hash"]
    rows = []
    for entry, at in entries:
        seq += 1
        record: dict[str, Any] = {
            "chain": chain,
            "seq": seq,
            # Postgres keeps microseconds: hash exactly what will be read back.
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
    await connection.execute(
        "UPDATE audit_head SET seq = $2, hash = $3 WHERE chain = $1", chain, seq, previous
    )
    return chain, seq


async def audit_records(
    connection: Connection, after: int, limit: int, chain: int = 0
) -> list[Record]:
    rows: list[Record] = await connection.fetch(
        "SELECT * FROM audit_log WHERE chain = $1 AND seq > $2 ORDER BY seq LIMIT $3",
        chain,
        after,
        limit,
    )
    return rows


async def audit_head(connection: Connection, chain: int = 0) -> tuple[int, str]:
    """A chain's head; a chain never begun is at its genesis."""
    row = await connection.fetchrow("SELECT seq, hash FROM audit_head WHERE chain = $1", chain)
    return (0, GENESIS_HASH) if row is None else (row["seq"], row["hash"])


@dataclass(frozen=True)
class RestoredChain:
    """A chain a restore from backup closed: its head then, when, and the backup's time."""

    head_seq: int
    restored_at: datetime
    backup_taken_at: datetime


async def restored_chains(connection: Connection) -> dict[int, RestoredChain]:
    rows = await connection.fetch(
        "SELECT chain, seq, restored_at, backup_taken_at FROM audit_head"
        " WHERE restored_at IS NOT NULL"
    )
    return {
        row["chain"]: RestoredChain(row["seq"], row["restored_at"], row["backup_taken_at"])
        for row in rows
    }


async def close_restored_chains(
    connection: Connection,
    restored_at: datetime,
    backup_taken_at: datetime,
    *,
    checkpointed: int = -1,
) -> list[int]:
    """Close every open chain as restored (the administrator's, at a restore); which.

    The history lost since the backup may have begun chains of its own, which the
    exchange checkpointed (`checkpointed`: the highest chain any checkpoint names): the
    numbers it may have used, through that and at least `MAX_AUDIT_CHAINS` past the
    highest here, are closed empty as well, so that no new chain takes a number whose
    checkpoints describe another history."""
    highest = await connection.fetchval("SELECT coalesce(max(chain), -1) FROM audit_head")
    highest = max(highest, checkpointed - MAX_AUDIT_CHAINS)
    await connection.execute(
        "INSERT INTO audit_head (chain, seq, hash)"
        " SELECT number, 0, $1 FROM generate_series($2::int, $3::int) AS number"
        " ON CONFLICT (chain) DO NOTHING",
        GENESIS_HASH,
        highest + 1,
        highest + MAX_AUDIT_CHAINS,
    )
    rows = await connection.fetch(
        "UPDATE audit_head SET restored_at = $1, backup_taken_at = $2"
        " WHERE restored_at IS NULL RETURNING chain, seq",
        restored_at,
        backup_taken_at,
    )
    return sorted(row["chain"] for row in rows if row["seq"] > 0)


async def audit_chains(connection: Connection) -> list[int]:
    """Every chain the log has a head or a record in, in order."""
    rows = await connection.fetch(
        "SELECT chain FROM audit_head UNION SELECT DISTINCT chain FROM audit_log ORDER BY chain"
    )
    return [row["chain"] for row in rows]


class CheckpointStorage(ExchangeStorage):
    """The exchange's storage as signing checkpoints of the audit chains needs it
    (`use_cases.audit.CheckpointWork`)."""

    async def audit_chains(self) -> list[int]:
        # Heads only: every chain appends begin has one, and this runs every few seconds,
        # where `audit_chains()` (for verify, which reads the whole log anyway) scans it.
        rows = await self.connection.fetch("SELECT chain FROM audit_head ORDER BY chain")
        return [row["chain"] for row in rows]

    async def last_checkpoint(self, chain: int) -> CheckpointMark | None:
        # A chain begun since the last look has no mark yet: it starts at nothing signed.
        await self.connection.execute(
            "INSERT INTO audit_checkpoint (chain, seq, signed_at) VALUES ($1, 0, 'epoch')"
            " ON CONFLICT (chain) DO NOTHING",
            chain,
        )
        # Another process signing this chain holds its row: it is that one's turn.
        row = await self.connection.fetchrow(
            "SELECT seq, signed_at FROM audit_checkpoint WHERE chain = $1 FOR UPDATE SKIP LOCKED",
            chain,
        )
        return None if row is None else CheckpointMark(row["seq"], row["signed_at"])

    async def audit_head_seq(self, chain: int) -> int:
        # The committed head: the records up to it are committed with it.
        seq: int = await self.connection.fetchval(
            "SELECT seq FROM audit_head WHERE chain = $1", chain
        )
        return seq

    async def audit_hashes(self, chain: int, after: int, through: int) -> list[tuple[int, str]]:
        rows = await self.connection.fetch(
            "SELECT seq, hash FROM audit_log WHERE chain = $1 AND seq > $2 AND seq <= $3"
            " ORDER BY seq",
            chain,
            after,
            through,
        )
        return [(row["seq"], row["hash"]) for row in rows]

    async def unanchored(self) -> tuple[int, float]:
        """Audit records beyond every chain's last checkpoint, and the oldest one's age in
        seconds (0 when there is none)."""
        row = await self.connection.fetchrow(
            "SELECT count(*) AS records,"
            " coalesce(extract(epoch FROM now() - min(l.recorded_at)), 0)::float8 AS age"
            " FROM audit_log l LEFT JOIN audit_checkpoint c ON c.chain = l.chain"
            " WHERE l.seq > coalesce(c.seq, 0)"
        )
        return row["records"], max(0.0, row["age"])

    async def save_checkpoint_mark(self, chain: int, mark: CheckpointMark) -> None:
        await self.connection.execute(
            "UPDATE audit_checkpoint SET seq = $2, signed_at = $3 WHERE chain = $1",
            chain,
            mark.seq,
            mark.signed_at,
        )
