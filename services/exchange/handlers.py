"""Handlers of the events the exchange service consumes, by event type.

Each handler is a plain function of (event, connection) that runs inside the transaction
the inbox opened for that event; `shared.runtime` consumes the topics these events travel
on and calls the handlers. A transaction moves from `pending` to exactly one final
outcome under its row lock, and every final outcome is announced in the same database
transaction (outbox): one `DataRequestCompleted` and one `TransactionRecorded` each.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from services.exchange import storage
from services.exchange.domain import (
    AuditEntry,
    Authorised,
    Outcome,
    authorise,
    digest,
    payload_size,
    schema_problem,
    signature_problem,
)
from shared.db import Connection, Pool
from shared.envelope import Envelope, Event
from shared.events.catalog import AgencyRecorded
from shared.events.exchange import (
    DataProvided,
    DataRefused,
    DataRequestCompleted,
    DataRequested,
    DataRequestForwarded,
    TransactionRecorded,
)
from shared.events.identity import AgencyKeyPublished, AgencyKeyRevoked
from shared.kafka import TRANSIENT_ERRORS, Rejected
from shared.logging import get_logger
from shared.outbox import enqueue_many
from shared.runtime import Handlers, Runtime
from shared.signing import SignatureInvalid, key_id_of, sign_event, signed_content

log = get_logger(__name__)

SOURCE = "exchange"
SWEEP_BATCH = 500
SWEEP_INTERVAL_SECONDS = 0.25


def _now() -> datetime:
    return datetime.now(UTC)


def _envelope(event: Event, subject: str, tx: uuid.UUID) -> Envelope[Any]:
    return Envelope.wrap(event, source=SOURCE, subject=subject, correlation_id=tx)


@dataclass
class Work:
    """What one database transaction writes, gathered so that it goes in a few statements.

    Handlers add to it; `flush` writes it in the caller's transaction, the audit records
    last, so the chain's head stays locked only for the end of the transaction.
    """

    new: list[dict[str, Any]] = field(default_factory=list)
    taken: set[uuid.UUID] = field(default_factory=set)
    completions: list[tuple[uuid.UUID, dict[str, Any]]] = field(default_factory=list)
    finished: dict[uuid.UUID, str] = field(default_factory=dict)
    events: list[Envelope[Any]] = field(default_factory=list)
    audit: list[tuple[AuditEntry, datetime]] = field(default_factory=list)

    async def flush(self, connection: Connection) -> None:
        await storage.insert_transactions(connection, self.new)
        await storage.complete_transactions(connection, self.completions)
        await enqueue_many(connection, self.events)
        await storage.append_audits(connection, self.audit)


# Projections of agencies and their keys.


async def on_agency_recorded(envelope: Envelope[AgencyRecorded], connection: Connection) -> None:
    await storage.record_agency(connection, envelope.payload)


async def on_agency_key_published(
    envelope: Envelope[AgencyKeyPublished], connection: Connection
) -> None:
    key = envelope.payload
    if not await storage.record_agency_key(connection, key):
        raise Rejected(
            f"kid_taken: key {key.kid} is already another agency's or another key; "
            f"a record for {key.agency} cannot move it"
        )


async def on_agency_key_revoked(
    envelope: Envelope[AgencyKeyRevoked], connection: Connection
) -> None:
    revoked = envelope.payload
    if not await storage.revoke_agency_key(connection, revoked, envelope.occurred_at):
        raise Rejected(f"kid_taken: key {revoked.kid} is not {revoked.agency}'s to revoke")


# A transaction.


async def on_data_requested(envelope: Envelope[DataRequested], connection: Connection) -> None:
    """Authorise a consumer's request: forward it to its provider, or deny it with the reason."""
    work = Work()
    await take_request(envelope, connection, work)
    await work.flush(connection)


async def take_request(
    envelope: Envelope[DataRequested], connection: Connection, work: Work
) -> None:
    """`on_data_requested`, writing through `work`."""
    request = envelope.payload
    now = _now()
    unreadable: str | None = None
    try:
        kid = key_id_of(request.signature)
    except SignatureInvalid as error:
        kid, unreadable = "", f"bad_signature: {error.reason}"
    taken, key, consumer, service, rights = await storage.request_context(
        connection, kid, request.consumer, request.data_service, request.transaction_id
    )
    decision = authorise(
        request, consumer=consumer, key=key, kid=kid, service=service, rights=rights, now=now
    )
    tx: dict[str, Any] = {
        "transaction_id": request.transaction_id,
        "consumer": request.consumer,
        "provider": service.provider if service is not None else None,
        "data_service": request.data_service,
        "purpose": request.purpose,
        "citizen": request.citizen,
        "personal_data": service.personal_data if service else request.citizen is not None,
        "request_bytes": payload_size(request.payload),
        "requested_at": now,
    }
    authorised = isinstance(decision, Authorised) and unreadable is None
    if authorised:
        assert isinstance(decision, Authorised)
        tx |= {"status": "pending", "forwarded_at": now, "deadline": decision.deadline}
    else:
        reason = unreadable or getattr(decision, "reason", "denied")
        tx |= {"status": "denied", "reason": reason}
    if taken or request.transaction_id in work.taken:
        # The id is taken: a replay, or another request reusing it. Neither may act twice.
        log.warning(
            "request with a used transaction id ignored", transaction_id=str(tx["transaction_id"])
        )
        return
    work.taken.add(request.transaction_id)
    work.new.append(tx)
    entry = AuditEntry(
        transaction_id=request.transaction_id,
        kind="request",
        outcome="forwarded" if authorised else "denied",
        consumer=request.consumer,
        provider=tx["provider"],
        data_service=request.data_service,
        purpose=request.purpose,
        legal_basis=decision.right.legal_basis if isinstance(decision, Authorised) else None,
        citizen=request.citizen,
        reason=tx.get("reason"),
        content_digest=digest(signed_content(request)),
        signature=request.signature,
    )
    if not authorised:
        await _finish(connection, work, tx, "denied", reason=tx["reason"], now=now)
        work.audit.append((entry, now))
        return
    assert isinstance(decision, Authorised)
    forwarded_fields: dict[str, Any] = {
        "transaction_id": request.transaction_id,
        "consumer": request.consumer,
        "provider": decision.service.provider,
        "data_service": request.data_service,
        "purpose": request.purpose,
        "payload": request.payload,
        "citizen": request.citizen,
        "deadline": decision.deadline,
        "signature": "-",
    }
    exchange_kid, exchange_key = await storage.signing_key(connection)
    unsigned = DataRequestForwarded(**forwarded_fields)
    forwarded = unsigned.model_copy(
        update={"signature": sign_event(unsigned, exchange_key, exchange_kid)}
    )
    work.events.append(_envelope(forwarded, decision.service.provider, request.transaction_id))
    work.audit.append((entry, now))


async def on_provider_answer(
    envelope: Envelope[DataProvided] | Envelope[DataRefused], connection: Connection
) -> None:
    """Check a provider's answer or refusal and deliver the transaction's final outcome.

    An answer to a transaction already final (timed out) is recorded in the audit log and
    changes nothing else.
    """
    work = Work()
    await take_answer(envelope, connection, work)
    await work.flush(connection)


async def take_answer(
    envelope: Envelope[DataProvided] | Envelope[DataRefused], connection: Connection, work: Work
) -> None:
    """`on_provider_answer`, writing through `work`."""
    answer = envelope.payload
    now = _now()
    problem: str | None = None
    try:
        kid = key_id_of(answer.signature)
    except SignatureInvalid as error:
        kid, problem = "", f"bad_signature: {error.reason}"
    tx, key, response_schema = await storage.answer_context(connection, answer.transaction_id, kid)
    if tx is None:
        raise Rejected(f"unknown_transaction: {answer.transaction_id} was never forwarded")
    if tx["provider"] != answer.provider:
        raise Rejected(f"wrong_provider: {answer.provider} is not this transaction's provider")
    entry = AuditEntry(
        transaction_id=answer.transaction_id,
        kind="response",
        outcome="",
        consumer=tx["consumer"],
        provider=tx["provider"],
        data_service=tx["data_service"],
        purpose=tx["purpose"],
        legal_basis=None,
        citizen=tx["citizen"],
        reason=None,
        content_digest=digest(signed_content(answer)),
        signature=answer.signature,
    )
    status = work.finished.get(answer.transaction_id, tx["status"])
    if status == "pending" and tx["deadline"] <= now:
        # Past its deadline before the sweeper got to it: the deadline decides, not the race.
        await _time_out(connection, work, tx, now)
        status = "timed_out"
    if status != "pending":
        late = replace(entry, kind="late_response", outcome="ignored", reason=f"already {status}")
        work.audit.append((late, now))
        await storage.complete_transaction(connection, tx["transaction_id"], late_response_at=now)
        return
    if problem is None:
        problem = signature_problem(answer, answer.provider, key, kid, now)
    outcome: Outcome
    payload: dict[str, Any] | None = None
    if isinstance(answer, DataProvided):
        if problem is None:
            invalid = schema_problem(answer.payload, response_schema or {})
            problem = None if invalid is None else f"invalid_answer: {invalid}"
        outcome, payload, reason = (
            ("failed", None, problem) if problem else ("answered", answer.payload, None)
        )
    else:
        outcome, reason = (
            ("failed", problem) if problem else ("refused", f"refused: {answer.reason}")
        )
    await _finish(
        connection,
        work,
        dict(tx),
        outcome,
        payload=payload,
        reason=reason,
        now=now,
        responded_at=now,
    )
    work.audit.append((replace(entry, outcome=outcome, reason=reason), now))


async def _time_out(
    connection: Connection, work: Work, tx: Mapping[str, Any], now: datetime
) -> None:
    reason = "timed_out: the provider did not answer before the deadline"
    entry = AuditEntry(
        transaction_id=tx["transaction_id"],
        kind="timeout",
        outcome="timed_out",
        consumer=tx["consumer"],
        provider=tx["provider"],
        data_service=tx["data_service"],
        purpose=tx["purpose"],
        legal_basis=None,
        citizen=tx["citizen"],
        reason=reason,
        content_digest=None,
        signature=None,
    )
    await _finish(connection, work, dict(tx), "timed_out", reason=reason, now=now)
    work.audit.append((entry, now))


async def _finish(
    connection: Connection,
    work: Work,
    tx: Mapping[str, Any],
    outcome: Outcome,
    *,
    now: datetime,
    payload: dict[str, Any] | None = None,
    reason: str | None = None,
    responded_at: datetime | None = None,
) -> None:
    """Make the transaction final and announce it: to its consumer and to monitoring."""
    transaction_id: uuid.UUID = tx["transaction_id"]
    exchange_kid, exchange_key = await storage.signing_key(connection)
    unsigned = DataRequestCompleted(
        transaction_id=transaction_id,
        consumer=tx["consumer"],
        provider=tx["provider"],
        data_service=tx["data_service"],
        outcome=outcome,
        payload=payload,
        reason=reason,
        signature="-",
    )
    completed = unsigned.model_copy(
        update={"signature": sign_event(unsigned, exchange_key, exchange_kid)}
    )
    response_bytes = payload_size(payload)
    work.finished[transaction_id] = outcome
    work.completions.append(
        (
            transaction_id,
            {
                "status": outcome,
                "reason": reason,
                "response_bytes": response_bytes,
                "responded_at": responded_at,
                "completed_at": now,
                "completion": completed.model_dump(mode="json"),
            },
        )
    )
    monitoring = _monitoring(tx, outcome, response_bytes, now, responded_at)
    work.events.append(_envelope(completed, tx["consumer"], transaction_id))
    work.events.append(_envelope(monitoring, str(transaction_id), transaction_id))


def _monitoring(
    tx: Mapping[str, Any],
    outcome: Outcome,
    response_bytes: int,
    completed_at: datetime,
    responded_at: datetime | None,
) -> TransactionRecorded:
    """The operational monitoring record: the exchange's time apart from the provider's."""
    requested_at: datetime = tx["requested_at"]
    forwarded_at: datetime | None = tx.get("forwarded_at")
    total = (completed_at - requested_at).total_seconds() * 1000
    provider_ms: float | None = None
    exchange_ms = total
    if responded_at is not None and forwarded_at is not None:
        provider_ms = max(0.0, (responded_at - forwarded_at).total_seconds() * 1000)
        exchange_ms = total - provider_ms
    elif outcome == "timed_out" and forwarded_at is not None and tx.get("deadline") is not None:
        # Waiting for a silent provider is not the exchange's time.
        exchange_ms = total - (tx["deadline"] - forwarded_at).total_seconds() * 1000
    return TransactionRecorded(
        transaction_id=tx["transaction_id"],
        consumer=tx["consumer"],
        provider=tx["provider"],
        data_service=tx["data_service"],
        purpose=tx["purpose"],
        outcome=outcome,
        request_bytes=tx["request_bytes"],
        response_bytes=response_bytes,
        requested_at=requested_at,
        completed_at=completed_at,
        exchange_ms=max(0.0, exchange_ms),
        provider_ms=provider_ms,
        personal_data=tx["personal_data"],
    )


# Timeouts.


async def sweep_timeouts(pool: Pool, now: datetime | None = None, limit: int = SWEEP_BATCH) -> int:
    """Time out pending transactions whose deadline passed; returns how many."""
    moment = now or _now()
    async with pool.acquire() as connection, connection.transaction():
        overdue = await storage.overdue_transactions(connection, moment, limit)
        work = Work()
        for tx in overdue:
            await _time_out(connection, work, tx, moment)
        await work.flush(connection)
    return len(overdue)


async def run_sweeper(runtime: Runtime) -> None:
    """Background task: time out overdue transactions until cancelled; failures wait and retry."""
    while True:
        try:
            swept = await sweep_timeouts(runtime.pool)
        except TRANSIENT_ERRORS as error:
            log.warning("timeout sweep failed, retrying", error=repr(error))
            swept = 0
        if swept < SWEEP_BATCH:
            await asyncio.sleep(SWEEP_INTERVAL_SECONDS)


async def handle_batch(pool: Pool, consumer: str, envelopes: Sequence[Envelope[Any]]) -> None:
    """Requests and answers of one poll, in one database transaction, written in bulk.

    The same rules as the per-event handlers (it runs their logic), the same inbox: each
    event is taken once. Raises if anything fails; the caller then rolls back and falls
    back to the per-event handlers, which retry and dead-letter one event at a time.
    """
    async with pool.acquire() as connection, connection.transaction():
        fresh = {
            row["event_id"]
            for row in await connection.fetch(
                "INSERT INTO processed_events (consumer, event_id)"
                " SELECT $1, unnest($2::uuid[]) ON CONFLICT DO NOTHING RETURNING event_id",
                consumer,
                [envelope.id for envelope in envelopes],
            )
        }
        work = Work()
        for envelope in envelopes:
            if envelope.id not in fresh:
                continue
            fresh.discard(envelope.id)  # the same event twice in one poll acts once
            if isinstance(envelope.payload, DataRequested):
                await take_request(envelope, connection, work)
            elif isinstance(envelope.payload, DataProvided | DataRefused):
                await take_answer(envelope, connection, work)
        await work.flush(connection)


PROJECTION_HANDLERS: Handlers = {
    AgencyRecorded: [on_agency_recorded],
    AgencyKeyPublished: [on_agency_key_published],
    AgencyKeyRevoked: [on_agency_key_revoked],
}

HANDLERS: Handlers = {
    **PROJECTION_HANDLERS,
    DataRequested: [on_data_requested],
    DataProvided: [on_provider_answer],
    DataRefused: [on_provider_answer],
}
