"""A transaction's use cases on a fake unit of work: requests, answers, timeouts."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest

from services.exchange.domain.audit import digest
from services.exchange.domain.transaction import TIMED_OUT, Transaction, payload_size
from services.exchange.use_cases.transactions import (
    forget_delivered_payloads,
    take_answer,
    take_request,
    time_out_overdue,
)
from shared.errors import DomainError, Forbidden, NotFound
from shared.events.exchange import (
    DataRequestCompleted,
    DataRequestForwarded,
    TransactionRecorded,
)
from shared.messages import MESSAGES
from shared.signing import (
    SignatureInvalid,
    canonical,
    generate_key,
    public_jwk,
    signed_content,
    verify_event,
)
from tests.unit.exchange.fakes import FakeExchangeWork
from tests.unit.exchange.world import (
    CITIZEN,
    CONSUMER,
    LEGAL_BASIS,
    NOW,
    PROVIDER,
    Signer,
    ended,
    pending,
    world,
)

LATER = NOW + timedelta(seconds=1)


async def exchange_verifies(work: FakeExchangeWork, event: object) -> bool:
    """Whether `event` carries a valid signature of the exchange's own key."""
    signer = await work.signer()
    try:
        verify_event(event, public_jwk(signer.key), "ES256")  # type: ignore[arg-type]
    except SignatureInvalid:
        return False
    return True


def refused_with(error: pytest.ExceptionInfo[DomainError], code: str) -> str:
    """The reason a consumer dead-letters the event with, once the code is checked."""
    assert error.value.code == code
    assert code in MESSAGES
    return str(error.value)


def forwarded_in(work: FakeExchangeWork) -> Transaction:
    """A pending transaction already stored, as the exchange left it after forwarding."""
    transaction = pending()
    work.transactions[transaction.transaction_id] = transaction
    return transaction


# A request.


async def test_an_authorised_request_is_forwarded_to_its_provider_signed_by_the_exchange() -> None:
    w = world()
    request = w.consumer.request()

    transaction = await take_request(w.work, request, now=NOW)

    assert transaction is not None
    assert transaction.status == "pending"
    assert transaction.deadline == NOW + timedelta(milliseconds=5000)
    assert transaction.request_bytes == payload_size(request.payload)
    assert w.work.transactions[request.transaction_id] == transaction
    (forwarded,) = w.work.events(DataRequestForwarded)
    assert (forwarded.provider, forwarded.payload) == (PROVIDER, request.payload)
    assert forwarded.deadline == transaction.deadline
    assert await exchange_verifies(w.work, forwarded)
    (envelope,) = w.work.published
    assert envelope.subject == PROVIDER
    assert envelope.correlation_id == request.transaction_id


async def test_a_forwarded_request_is_audited_with_its_legal_basis_and_a_digest_only() -> None:
    w = world()
    request = w.consumer.request()

    await take_request(w.work, request, now=NOW)

    ((entry, at),) = w.work.audit
    assert (entry.kind, entry.outcome, entry.legal_basis) == ("request", "forwarded", LEGAL_BASIS)
    assert entry.content_digest == digest(signed_content(request))
    assert entry.signature == request.signature
    assert entry.citizen == CITIZEN
    assert at == NOW


async def test_a_request_without_a_right_is_denied_and_its_outcome_announced_at_once() -> None:
    w = world()
    w.work.rights.clear()
    request = w.consumer.request()

    transaction = await take_request(w.work, request, now=NOW)

    denied = ended(transaction, "denied", "no_access_right")
    assert not w.work.events(DataRequestForwarded)
    (completed,) = w.work.events(DataRequestCompleted)
    assert (completed.outcome, completed.reason) == ("denied", denied.reason)
    assert await exchange_verifies(w.work, completed)
    assert denied.completion == completed
    (monitoring,) = w.work.events(TransactionRecorded)
    assert monitoring.outcome == "denied"
    assert monitoring.provider_ms is None
    assert [e.subject for e in w.work.published] == [CONSUMER, str(request.transaction_id)]
    assert w.work.audit_of(request.transaction_id) == [("request", "denied", denied.reason)]


async def test_a_request_whose_signature_names_no_key_is_denied_as_a_bad_signature() -> None:
    w = world()
    request = w.consumer.request().model_copy(update={"signature": "not a signature"})

    transaction = await take_request(w.work, request, now=NOW)

    ended(transaction, "denied", "bad_signature")


async def test_a_request_signed_with_another_key_is_denied_as_a_bad_signature() -> None:
    w = world()
    impostor = Signer(CONSUMER, key=generate_key(), kid=w.consumer.kid)

    transaction = await take_request(w.work, impostor.request(), now=NOW)

    ended(transaction, "denied", "bad_signature")


async def test_a_request_for_an_unknown_data_service_is_denied_without_a_provider() -> None:
    w = world()
    request = w.consumer.request(data_service="nowhere.nothing", citizen=None)

    transaction = await take_request(w.work, request, now=NOW)

    denied = ended(transaction, "denied", "unknown_data_service")
    assert denied.provider is None
    assert denied.personal_data is False
    (completed,) = w.work.events(DataRequestCompleted)
    assert completed.provider is None


async def test_a_request_reusing_a_taken_transaction_id_changes_nothing() -> None:
    w = world()
    request = w.consumer.request()
    await take_request(w.work, request, now=NOW)
    before = (dict(w.work.transactions), list(w.work.published), list(w.work.audit))

    replayed = await take_request(
        w.work, w.consumer.request(**{"transaction_id": request.transaction_id}), now=LATER
    )

    assert replayed is None
    assert (w.work.transactions, w.work.published, w.work.audit) == before


# An answer.


async def test_a_valid_answer_completes_the_transaction_as_answered() -> None:
    w = world()
    forwarded = forwarded_in(w.work)

    answered = await take_answer(
        w.work, w.provider.provide(forwarded.transaction_id, {"alive": True}), now=LATER
    )

    assert answered.status == "answered"
    assert w.work.transactions[forwarded.transaction_id] == answered
    assert answered.response_bytes == payload_size({"alive": True})
    (completed,) = w.work.events(DataRequestCompleted)
    assert (completed.outcome, completed.payload, completed.reason) == (
        "answered",
        {"alive": True},
        None,
    )
    assert await exchange_verifies(w.work, completed)
    (monitoring,) = w.work.events(TransactionRecorded)
    assert monitoring.provider_ms == 1000.0
    assert monitoring.exchange_ms == 0.0
    assert monitoring.response_bytes == answered.response_bytes
    assert w.work.audit_of(forwarded.transaction_id) == [("response", "answered", None)]


async def test_a_providers_refusal_reaches_the_consumer_with_its_reason() -> None:
    w = world()
    forwarded = forwarded_in(w.work)

    refused = await take_answer(
        w.work, w.provider.refuse(forwarded.transaction_id, "under judicial seal"), now=LATER
    )

    assert (refused.status, refused.reason) == ("refused", "refused: under judicial seal")
    (completed,) = w.work.events(DataRequestCompleted)
    assert (completed.outcome, completed.payload) == ("refused", None)
    assert w.work.audit_of(forwarded.transaction_id) == [
        ("response", "refused", "refused: under judicial seal")
    ]


async def test_an_answer_breaking_the_response_schema_fails_without_its_payload() -> None:
    w = world()
    forwarded = forwarded_in(w.work)

    failed = await take_answer(
        w.work, w.provider.provide(forwarded.transaction_id, {"alive": "perhaps"}), now=LATER
    )

    ended(failed, "failed", "invalid_answer: alive:")
    (completed,) = w.work.events(DataRequestCompleted)
    assert completed.payload is None
    assert failed.response_bytes == 0


async def test_an_answer_or_refusal_with_a_bad_signature_fails() -> None:
    w = world()
    impostor = Signer(PROVIDER, key=generate_key(), kid=w.provider.kid)
    answered, refused = pending(), pending()
    w.work.transactions |= {t.transaction_id: t for t in (answered, refused)}

    first = await take_answer(
        w.work, impostor.provide(answered.transaction_id, {"alive": True}), now=LATER
    )
    second = await take_answer(w.work, impostor.refuse(refused.transaction_id, "no"), now=LATER)

    for failed in (first, second):
        ended(failed, "failed", "bad_signature")


async def test_an_answer_to_a_transaction_never_forwarded_is_refused_as_unknown() -> None:
    w = world()
    bogus = uuid.uuid4()

    with pytest.raises(NotFound) as error:
        await take_answer(w.work, w.provider.provide(bogus, {"alive": True}), now=LATER)

    assert refused_with(error, "unknown_transaction") == (
        f"unknown_transaction: {bogus} was never forwarded"
    )
    assert not w.work.published
    assert not w.work.audit


async def test_an_answer_from_another_provider_than_the_transactions_is_refused() -> None:
    w = world()
    forwarded = forwarded_in(w.work)
    stranger = Signer("education")

    with pytest.raises(Forbidden) as error:
        await take_answer(w.work, stranger.provide(forwarded.transaction_id, {}), now=LATER)

    assert refused_with(error, "wrong_provider") == (
        "wrong_provider: education is not this transaction's provider"
    )
    assert w.work.transactions[forwarded.transaction_id] == forwarded
    assert not w.work.published
    assert not w.work.audit


async def test_an_answer_after_the_deadline_times_the_transaction_out_and_is_ignored() -> None:
    w = world()
    forwarded = forwarded_in(w.work)
    late = NOW + timedelta(seconds=6)

    after = await take_answer(
        w.work, w.provider.provide(forwarded.transaction_id, {"alive": True}), now=late
    )

    assert (after.status, after.reason, after.late_response_at) == ("timed_out", TIMED_OUT, late)
    (completed,) = w.work.events(DataRequestCompleted)
    assert completed.outcome == "timed_out"
    assert w.work.audit_of(forwarded.transaction_id) == [
        ("timeout", "timed_out", TIMED_OUT),
        ("late_response", "ignored", "already timed_out"),
    ]


async def test_an_answer_to_a_final_transaction_changes_nothing_but_the_audit_log() -> None:
    w = world()
    forwarded = forwarded_in(w.work)
    first = await take_answer(
        w.work, w.provider.provide(forwarded.transaction_id, {"alive": True}), now=LATER
    )
    published = list(w.work.published)

    again = await take_answer(
        w.work, w.provider.refuse(forwarded.transaction_id, "changed my mind"), now=LATER
    )

    assert again.status == "answered"
    assert again.completion == first.completion
    assert again.late_response_at == LATER
    assert w.work.published == published
    assert w.work.audit_of(forwarded.transaction_id)[-1] == (
        "late_response",
        "ignored",
        "already answered",
    )
    (late, _) = w.work.audit[-1]
    assert late.content_digest is not None
    assert late.signature is not None


# Timeouts.


async def test_overdue_transactions_time_out_and_are_announced() -> None:
    w = world()
    overdue = [pending(), pending()]
    waiting = pending(deadline=NOW + timedelta(minutes=1))
    w.work.transactions |= {t.transaction_id: t for t in (*overdue, waiting)}
    swept_at = NOW + timedelta(seconds=5, milliseconds=200)

    swept = await time_out_overdue(w.work, now=swept_at)

    assert swept == 2
    for transaction in overdue:
        after = w.work.transactions[transaction.transaction_id]
        assert (after.status, after.reason, after.completed_at) == (
            "timed_out",
            TIMED_OUT,
            swept_at,
        )
        assert w.work.audit_of(transaction.transaction_id) == [("timeout", "timed_out", TIMED_OUT)]
    assert w.work.transactions[waiting.transaction_id].status == "pending"
    assert [c.outcome for c in w.work.events(DataRequestCompleted)] == ["timed_out"] * 2
    for monitoring in w.work.events(TransactionRecorded):
        # Waiting for a silent provider is not the exchange's time.
        assert monitoring.exchange_ms == pytest.approx(200.0)
        assert monitoring.provider_ms is None


async def test_the_sweeper_takes_at_most_its_limit_the_earliest_deadlines_first() -> None:
    w = world()
    earliest = pending(deadline=NOW)
    later = pending(deadline=NOW + timedelta(seconds=1))
    w.work.transactions |= {t.transaction_id: t for t in (later, earliest)}

    swept = await time_out_overdue(w.work, now=NOW + timedelta(seconds=2), limit=1)

    assert swept == 1
    assert w.work.transactions[earliest.transaction_id].status == "timed_out"
    assert w.work.transactions[later.transaction_id].status == "pending"


async def test_with_nothing_overdue_the_sweeper_writes_nothing() -> None:
    w = world()
    forwarded_in(w.work)

    assert await time_out_overdue(w.work, now=NOW) == 0
    assert not w.work.published
    assert not w.work.audit


# What is kept of requests whose signature does not hold, and of answered payloads.


async def test_an_unsigned_request_is_recorded_as_unverified_without_its_citizen() -> None:
    w = world()
    forged = w.consumer.request().model_copy(update={"purpose": "curiosity"})

    transaction = ended(await take_request(w.work, forged, now=NOW), "denied", "bad_signature")

    assert transaction.citizen is None
    (record, _) = w.work.audit[-1]
    assert (record.kind, record.outcome, record.citizen) == ("request", "unverified", None)
    assert record.reason is not None
    assert record.reason.startswith("bad_signature")
    # What was received stays provable by its digest; the consumer is told it was denied.
    assert record.content_digest == digest(signed_content(forged))
    (completed,) = w.work.events(DataRequestCompleted)
    assert completed.outcome == "denied"


async def test_a_denied_request_whose_signature_holds_keeps_its_citizen() -> None:
    w = world()

    await take_request(w.work, w.consumer.request(data_service="nowhere.nothing"), now=NOW)

    (record, _) = w.work.audit[-1]
    assert (record.outcome, record.citizen) == ("denied", CITIZEN)


async def test_a_late_answer_whose_signature_does_not_hold_is_audited_as_unverified_only() -> None:
    w = world()
    forwarded = forwarded_in(w.work)
    first = await take_answer(
        w.work, w.provider.provide(forwarded.transaction_id, {"alive": True}), now=LATER
    )
    impostor = Signer(PROVIDER, key=generate_key(), kid=w.provider.kid)

    again = await take_answer(
        w.work, impostor.refuse(forwarded.transaction_id, "changed my mind"), now=LATER
    )

    assert again.late_response_at is None
    assert again.completion == first.completion
    kind, outcome, reason = w.work.audit_of(forwarded.transaction_id)[-1]
    assert (kind, outcome) == ("late_response", "unverified")
    assert reason is not None
    assert reason.startswith("bad_signature")


async def test_an_answered_payload_keeps_its_digest_with_the_outcome() -> None:
    w = world()
    forwarded = forwarded_in(w.work)

    answered = await take_answer(
        w.work, w.provider.provide(forwarded.transaction_id, {"alive": True}), now=LATER
    )

    assert answered.payload_digest == digest(canonical({"alive": True}))
    assert answered.payload_removed_at is None


async def test_a_delivered_payload_past_retention_leaves_only_its_digest() -> None:
    w = world()
    forwarded = forwarded_in(w.work)
    recent = pending(deadline=NOW + timedelta(hours=3))
    w.work.transactions[recent.transaction_id] = recent
    old = await take_answer(
        w.work, w.provider.provide(forwarded.transaction_id, {"alive": True}), now=LATER
    )
    await take_answer(
        w.work,
        w.provider.provide(recent.transaction_id, {"alive": False}),
        now=LATER + timedelta(hours=2),
    )

    removed = await forget_delivered_payloads(
        w.work, timedelta(hours=1), now=LATER + timedelta(hours=2)
    )

    assert removed == 1
    after = w.work.transactions[forwarded.transaction_id]
    assert after.completion is not None
    assert after.completion.payload is None
    assert after.payload_digest == old.payload_digest
    assert after.payload_removed_at == LATER + timedelta(hours=2)
    kept = w.work.transactions[recent.transaction_id]
    assert kept.completion is not None
    assert kept.completion.payload == {"alive": False}


async def test_the_retention_pass_takes_at_most_its_limit() -> None:
    w = world()
    for _ in range(3):
        transaction = forwarded_in(w.work)
        await take_answer(
            w.work, w.provider.provide(transaction.transaction_id, {"alive": True}), now=LATER
        )

    first = await forget_delivered_payloads(
        w.work, timedelta(0), now=LATER + timedelta(seconds=1), limit=2
    )
    rest = await forget_delivered_payloads(w.work, timedelta(0), now=LATER + timedelta(seconds=1))

    assert (first, rest) == (2, 1)
