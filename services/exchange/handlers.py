"""The events the exchange consumes, handed to its use cases.

Requests and answers arrive at volume: `BATCHES` takes them a poll at a time, in the one
database transaction the runtime opens for the poll, and writes the poll's changes in
bulk. Agencies and their keys (projections) come one event at a time (`HANDLERS`). The
timeout sweeper, a background task, times out what nobody answered; another signs
checkpoints of the audit chain.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Coroutine, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from opentelemetry import context as otel_context

from services.exchange.domain.audit import CheckpointPolicy
from services.exchange.domain.transaction import Transaction
from services.exchange.storage import CheckpointStorage, ExchangeStorage, gathered
from services.exchange.use_cases import audit, registers, transactions
from shared.db import Connection, Pool
from shared.envelope import Envelope
from shared.errors import DomainError
from shared.events.catalog import AgencyRecorded
from shared.events.exchange import DataProvided, DataRefused, DataRequested
from shared.events.identity import AgencyKeyPublished, AgencyKeyRevoked
from shared.inbox import first_deliveries, forget_deliveries
from shared.kafka import TRANSIENT_ERRORS, Rejected, arrived_at
from shared.logging import get_logger
from shared.operational_metrics import (
    AUDIT_UNANCHORED,
    AUDIT_UNANCHORED_AGE,
    EXCHANGE_ROUND_TRIP,
    EXCHANGE_STEP,
)
from shared.runtime import BatchHandling, Handlers, Runtime
from shared.topics import Topic, resolve
from shared.unit_of_work import transaction

log = get_logger(__name__)

# The inbox's name for the exchange: the same for every member of its consumer group,
# so that a redelivery to another member stays harmless.
INBOX = "exchange"
TRANSACTION_TOPICS = (Topic.AGENCY_REQUESTS, Topic.AGENCY_ANSWERS)
SWEEP_INTERVAL_SECONDS = 0.25
RETENTION_INTERVAL_SECONDS = 30.0


# Requests and answers, a poll at a time.


async def take_transactions(
    envelopes: Sequence[Envelope[Any]],
    connection: Connection,
    parents: Sequence[otel_context.Context],
) -> Mapping[uuid.UUID, str]:
    """A poll's requests and answers: each taken once, the refused ones returned.

    A refused event is taken back out of the inbox, so that if it comes again (the
    process died before dead-lettering it) it is refused again rather than skipped.
    """
    fresh = await first_deliveries(connection, INBOX, [envelope.id for envelope in envelopes])
    refused: dict[uuid.UUID, str] = {}
    taken: list[tuple[Transaction, datetime]] = []
    # Requests before answers: an answer read in the same poll as its request (consumers
    # reading again after a restore, say) then finds its transaction.
    ordered = sorted(
        zip(envelopes, parents, strict=True),
        key=lambda pair: not isinstance(pair[0].payload, DataRequested),
    )
    async with gathered(connection) as work:
        await work.read_ahead([envelope.payload for envelope in envelopes if envelope.id in fresh])
        for envelope, parent in ordered:
            if envelope.id not in fresh:
                continue
            fresh.discard(envelope.id)  # the same event twice in one poll acts once
            token = otel_context.attach(parent)
            # Judged as of when it reached the broker, however late it is read (after a
            # restart or a restore): an answer that came before its deadline is on time.
            now = min(arrived_at(parent) or datetime.now(UTC), datetime.now(UTC))
            try:
                if (transaction := await _take(work, envelope.payload, now)) is not None:
                    taken.append((transaction, now))
            except DomainError as refusal:
                refused[envelope.id] = str(refusal)
            finally:
                otel_context.detach(token)
        await forget_deliveries(connection, INBOX, list(refused))
    # Before the poll's commit: a poll retried after a failed commit is observed twice,
    # which a latency histogram can bear.
    observe_completed(taken)
    return refused


async def _take(work: ExchangeStorage, event: object, now: datetime) -> Transaction | None:
    if isinstance(event, DataRequested):
        return await transactions.take_request(work, event, now=now)
    if isinstance(event, DataProvided | DataRefused):
        return await transactions.take_answer(work, event, now=now)
    return None


def observe_completed(taken: Sequence[tuple[Transaction, datetime]]) -> None:
    """The round trip, and its provider and exchange steps, of each transaction that
    reached its outcome as it was taken (at that moment: not a late answer to an older
    outcome)."""
    for done, taken_at in taken:
        completed = done.completed_at
        if completed is None or completed < taken_at:
            continue
        total = (completed - done.requested_at).total_seconds()
        EXCHANGE_ROUND_TRIP.labels(done.status).observe(total)
        if done.forwarded_at is not None and done.responded_at is not None:
            provider = max(0.0, (done.responded_at - done.forwarded_at).total_seconds())
            EXCHANGE_STEP.labels("provider").observe(provider)
            EXCHANGE_STEP.labels("exchange").observe(max(0.0, total - provider))


BATCHES: dict[str, BatchHandling] = {
    # members: the exchange's settings say how many (bootstrap).
    "transactions": BatchHandling(
        topics=TRANSACTION_TOPICS, apply=take_transactions, max_records=200
    ),
}


# Projections of agencies and their keys, one event at a time.


async def on_agency_recorded(envelope: Envelope[AgencyRecorded], connection: Connection) -> None:
    await registers.record_agency(ExchangeStorage(connection), envelope.payload)


async def on_agency_key_published(
    envelope: Envelope[AgencyKeyPublished], connection: Connection
) -> None:
    try:
        await registers.record_agency_key(ExchangeStorage(connection), envelope.payload)
    except DomainError as refusal:
        raise Rejected(str(refusal)) from None


async def on_agency_key_revoked(
    envelope: Envelope[AgencyKeyRevoked], connection: Connection
) -> None:
    try:
        await registers.revoke_agency_key(
            ExchangeStorage(connection), envelope.payload, envelope.occurred_at
        )
    except DomainError as refusal:
        raise Rejected(str(refusal)) from None


PROJECTION_HANDLERS: Handlers = {
    AgencyRecorded: [on_agency_recorded],
    AgencyKeyPublished: [on_agency_key_published],
    AgencyKeyRevoked: [on_agency_key_revoked],
}
HANDLERS = PROJECTION_HANDLERS


# Timeouts.


async def sweep_timeouts(
    pool: Pool, now: datetime | None = None, limit: int = transactions.SWEEP_BATCH
) -> int:
    """Time out overdue transactions, in one database transaction; returns how many."""
    async with (
        pool.acquire() as connection,
        connection.transaction(),
        gathered(connection) as work,
    ):
        return await transactions.time_out_overdue(work, now=now, limit=limit)


async def forget_delivered_payloads(
    pool: Pool,
    retention: timedelta,
    now: datetime | None = None,
    limit: int = transactions.RETENTION_BATCH,
) -> int:
    """One bounded batch of delivered payloads past retention reduced to their digests,
    in one database transaction; returns how many."""
    async with transaction(pool, ExchangeStorage) as work:
        return await transactions.forget_delivered_payloads(work, retention, now=now, limit=limit)


def payload_retention(retention: timedelta) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """The background task that keeps answered payloads no longer than `retention` after
    delivery: batch after batch while there is a backlog, then a pass every
    RETENTION_INTERVAL_SECONDS."""

    async def run_payload_retention(runtime: Runtime) -> None:
        while True:
            try:
                removed = await forget_delivered_payloads(runtime.pool, retention)
            except TRANSIENT_ERRORS as error:
                log.warning("payload retention pass failed, retrying", error=repr(error))
                removed = 0
            if removed < transactions.RETENTION_BATCH:
                await asyncio.sleep(RETENTION_INTERVAL_SECONDS)

    return run_payload_retention


def is_answers_channel(topic: str) -> bool:
    try:
        spec, _ = resolve(topic)
    except KeyError:
        return False
    return spec.name == Topic.AGENCY_ANSWERS


async def answers_read_through(runtime: Runtime) -> datetime | None:
    """The moment up to which every answer that reached the broker has been taken, over
    the process's members (None while that cannot be told): a transaction whose deadline
    is later may still have its answer waiting, unread, on Kafka."""
    members = runtime.batch_consumers
    if not members:
        return datetime.now(UTC)
    moments = [await member.read_through(is_answers_channel) for member in members]
    known = [moment for moment in moments if moment is not None]
    return min(known) if len(known) == len(moments) else None


async def run_sweeper(runtime: Runtime) -> None:
    """Background task: time out overdue transactions until cancelled; failures wait and
    retry. Overdue means past its deadline by the answers read so far: after a restart or
    a restore, a transaction is not timed out while answers that reached the broker before
    its deadline wait to be read."""
    while True:
        try:
            through = await answers_read_through(runtime)
            swept = 0 if through is None else await sweep_timeouts(runtime.pool, now=through)
        except TRANSIENT_ERRORS as error:
            log.warning("timeout sweep failed, retrying", error=repr(error))
            swept = 0
        if swept < transactions.SWEEP_BATCH:
            await asyncio.sleep(SWEEP_INTERVAL_SECONDS)


# Anchoring the audit log.

CHECKPOINT_POLL_SECONDS = 0.5


async def sign_audit_checkpoints(pool: Pool, policy: CheckpointPolicy) -> int:
    """Sign and publish what checkpoints are due, in one database transaction; how many."""
    async with transaction(pool, CheckpointStorage) as work:
        return len(await audit.sign_checkpoints(work, policy))


async def read_audit_anchoring(runtime: Runtime) -> None:
    """At a scrape: how many audit records, and how old the oldest, no checkpoint covers
    yet (the alert on checkpoints not advancing reads these)."""
    async with transaction(runtime.pool, CheckpointStorage) as work:
        records, age = await work.unanchored()
    AUDIT_UNANCHORED.set(records)
    AUDIT_UNANCHORED_AGE.set(age)


def audit_checkpointer(
    policy: CheckpointPolicy,
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """The background task that checkpoints the audit chain as `policy` says."""

    async def run_audit_checkpoints(runtime: Runtime) -> None:
        # Until cancelled; a failure waits and retries.
        while True:
            try:
                await sign_audit_checkpoints(runtime.pool, policy)
            except TRANSIENT_ERRORS as error:
                log.warning("audit checkpoint failed, retrying", error=repr(error))
            await asyncio.sleep(min(CHECKPOINT_POLL_SECONDS, policy.every_seconds))

    return run_audit_checkpoints
