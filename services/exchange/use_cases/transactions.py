"""A transaction's use cases: a request taken, an answer taken, overdue ones timed out,
delivered payloads forgotten after their retention period.

Each step is decided by the `Transaction` (services/exchange/domain/transaction.py) and
stored with its audit record and its events in the caller's unit of work: the state
change, the audit log and the outbox commit together. How the writes are made fast (a
poll's worth gathered into a few statements) is the storage's business.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from services.exchange.domain.authorisation import authorise, signature_problem, signing_kid
from services.exchange.domain.transaction import Announcement, Answer, Step, Transaction
from services.exchange.use_cases.ports import SOURCE, ExchangeWork
from shared.envelope import Envelope
from shared.errors import Forbidden, NotFound
from shared.events.exchange import DataRequestCompleted, DataRequested, DataRequestForwarded
from shared.logging import get_logger

log = get_logger(__name__)

SWEEP_BATCH = 500
RETENTION_BATCH = 500


async def take_request(
    work: ExchangeWork, request: DataRequested, *, now: datetime | None = None
) -> Transaction | None:
    """Authorise a consumer's request: forward it to its provider, or deny it with the reason.

    A transaction id already taken (a replay, or another request reusing it) acts no
    more: None.
    """
    now = now or datetime.now(UTC)
    kid, unreadable = signing_kid(request.signature)
    context = await work.request_context(kid, request)
    if context.taken:
        log.warning(
            "request with a used transaction id ignored",
            transaction_id=str(request.transaction_id),
        )
        return None
    decision = authorise(
        request,
        consumer=context.consumer,
        key=context.key,
        kid=kid,
        unreadable=unreadable,
        service=context.service,
        rights=context.rights,
        now=now,
    )
    step = Transaction.receive(
        request, decision, service=context.service, now=now, signer=await work.signer()
    )
    await work.open_transaction(step.transaction)
    await _record(work, step)
    return step.transaction


async def take_answer(
    work: ExchangeWork, answer: Answer, *, now: datetime | None = None
) -> Transaction:
    """Check a provider's answer or refusal and deliver the transaction's final outcome.

    An answer to a transaction already final (timed out) is recorded in the audit log and
    changes nothing else. Raises NotFound for a transaction never forwarded, Forbidden
    for an answer from another provider than the transaction's.
    """
    now = now or datetime.now(UTC)
    kid, unreadable = signing_kid(answer.signature)
    context = await work.answer_context(answer.transaction_id, kid)
    if context is None:
        raise NotFound("unknown_transaction", f"{answer.transaction_id} was never forwarded")
    transaction, signer = context.transaction, await work.signer()
    if not transaction.answered_by(answer.provider):
        raise Forbidden("wrong_provider", f"{answer.provider} is not this transaction's provider")
    # Checked before anything about the answer is recorded, late or not.
    problem = signature_problem(
        answer, answer.provider, context.key, kid, now, unreadable=unreadable
    )
    if transaction.overdue(now):
        # Past its deadline before the sweeper got to it: the deadline decides, not the race.
        transaction = await _finish(work, transaction.time_out(now, signer))
    if transaction.final:
        late = transaction.ignore_late_answer(answer, now, signature_problem=problem)
        if problem is None:
            await work.note_late_response(late.transaction)
        await _record(work, late)
        return late.transaction
    step = transaction.take_answer(
        answer,
        signature_problem=problem,
        response_schema=context.response_schema,
        now=now,
        signer=signer,
    )
    return await _finish(work, step)


async def time_out_overdue(
    work: ExchangeWork, *, now: datetime | None = None, limit: int = SWEEP_BATCH
) -> int:
    """Time out pending transactions whose deadline passed (up to `limit`); returns how many."""
    now = now or datetime.now(UTC)
    overdue = await work.overdue_transactions(now, limit)
    if overdue:
        signer = await work.signer()
        for transaction in overdue:
            await _finish(work, transaction.time_out(now, signer))
    return len(overdue)


async def forget_delivered_payloads(
    work: ExchangeWork,
    retention: timedelta,
    *,
    now: datetime | None = None,
    limit: int = RETENTION_BATCH,
) -> int:
    """Keep only the digest of up to `limit` answered payloads delivered (published to
    their consumer) more than `retention` ago; returns how many went."""
    now = now or datetime.now(UTC)
    return await work.forget_payloads(delivered_before=now - retention, now=now, limit=limit)


async def _finish(work: ExchangeWork, step: Step) -> Transaction:
    await work.finish_transaction(step.transaction)
    await _record(work, step)
    return step.transaction


async def _record(work: ExchangeWork, step: Step) -> None:
    """The step's audit record and its events, in the same transaction as its change."""
    await work.append_audit(step.audit, step.at)
    await work.publish(_envelopes(step.events))


def _envelopes(events: Sequence[Announcement]) -> list[Envelope[Any]]:
    """Each event keyed by whom it goes to: the provider, the consumer, or monitoring."""
    envelopes: list[Envelope[Any]] = []
    for event in events:
        if isinstance(event, DataRequestForwarded):
            subject = event.provider
        elif isinstance(event, DataRequestCompleted):
            subject = event.consumer
        else:
            subject = str(event.transaction_id)
        envelopes.append(
            Envelope.wrap(
                event, source=SOURCE, subject=subject, correlation_id=event.transaction_id
            )
        )
    return envelopes
