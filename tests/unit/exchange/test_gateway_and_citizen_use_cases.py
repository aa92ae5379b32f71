"""The gateway's and the citizens' use cases on a fake unit of work."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from services.exchange.domain.audit import AuditEntry
from services.exchange.use_cases.citizens import citizen_data_requests
from services.exchange.use_cases.gateway import gateway_outcome, submit_request
from services.exchange.use_cases.transactions import (
    forget_delivered_payloads,
    take_answer,
    take_request,
)
from shared.errors import Forbidden, Gone, NotFound
from shared.events.exchange import DataRequested
from tests.unit.exchange.world import (
    CITIZEN,
    CONSUMER,
    LEGAL_BASIS,
    NOW,
    PROVIDER,
    SERVICE_ID,
    world,
)

# The gateway.


async def test_a_request_posted_to_the_gateway_enters_on_its_consumers_topic() -> None:
    w = world()
    request = w.consumer.request()

    await submit_request(w.work, request, CONSUMER)

    (envelope,) = w.work.published
    assert isinstance(envelope.payload, DataRequested)
    assert envelope.payload == request
    assert envelope.subject == CONSUMER
    assert envelope.correlation_id == request.transaction_id


async def test_no_agency_posts_a_request_in_anothers_name() -> None:
    w = world()

    with pytest.raises(Forbidden) as error:
        await submit_request(w.work, w.consumer.request(), PROVIDER)

    assert error.value.code == "exchange_not_your_request"
    assert error.value.detail == CONSUMER
    assert not w.work.published


async def test_a_request_posted_again_sends_nothing_new() -> None:
    w = world()
    request = w.consumer.request()
    await take_request(w.work, request, now=NOW)
    published = list(w.work.published)

    await submit_request(w.work, request, CONSUMER)

    assert w.work.published == published


async def test_a_transaction_not_taken_yet_is_received_unless_it_must_exist() -> None:
    w = world()
    transaction_id = uuid.uuid4()

    outcome = await gateway_outcome(w.work, transaction_id, CONSUMER, must_exist=False)
    with pytest.raises(NotFound) as error:
        await gateway_outcome(w.work, transaction_id, CONSUMER, must_exist=True)

    assert (outcome.status, outcome.completion) == ("received", None)
    assert error.value.code == "exchange_unknown_transaction"


async def test_a_pending_transaction_has_no_outcome_yet() -> None:
    w = world()
    request = w.consumer.request()
    await take_request(w.work, request, now=NOW)

    outcome = await gateway_outcome(w.work, request.transaction_id, CONSUMER, must_exist=True)

    assert (outcome.status, outcome.completion) == ("pending", None)


async def test_a_final_transaction_gives_its_signed_outcome_to_its_consumer_only() -> None:
    w = world()
    request = w.consumer.request()
    await take_request(w.work, request, now=NOW)
    answered = await take_answer(
        w.work, w.provider.provide(request.transaction_id, {"alive": True}), now=NOW
    )

    outcome = await gateway_outcome(w.work, request.transaction_id, CONSUMER, must_exist=False)
    with pytest.raises(NotFound):
        await gateway_outcome(w.work, request.transaction_id, PROVIDER, must_exist=False)

    assert outcome.status == "answered"
    assert outcome.completion == answered.completion
    assert outcome.completion is not None
    assert outcome.completion.payload == {"alive": True}


# A citizen's view.


@pytest.mark.parametrize("level", [None, 0, 1])
async def test_a_citizen_below_assurance_level_two_sees_nothing(level: int | None) -> None:
    w = world()

    with pytest.raises(Forbidden) as error:
        await citizen_data_requests(w.work, CITIZEN, level, 100)

    assert error.value.code == "exchange_assurance_too_low"


async def test_a_citizen_sees_who_asked_about_them_why_and_the_outcome_newest_first() -> None:
    w = world()
    answered, waiting = w.consumer.request(), w.consumer.request()
    await take_request(w.work, answered, now=NOW)
    await take_answer(
        w.work,
        w.provider.provide(answered.transaction_id, {"alive": True}),
        now=NOW + timedelta(seconds=1),
    )
    await take_request(w.work, waiting, now=NOW + timedelta(seconds=2))
    await take_request(w.work, w.consumer.request(citizen="cd" * 32), now=NOW)

    seen = await citizen_data_requests(w.work, CITIZEN, 2, 100)

    assert [(s.transaction_id, s.outcome) for s in seen] == [
        (waiting.transaction_id, "pending"),
        (answered.transaction_id, "answered"),
    ]
    latest = seen[0]
    assert (latest.consumer, latest.consumer_name_en, latest.consumer_name_fa) == (
        CONSUMER,
        f"Agency {CONSUMER}",
        f"دستگاه {CONSUMER}",
    )
    assert (latest.provider, latest.legal_basis) == (PROVIDER, LEGAL_BASIS)
    assert latest.at == NOW + timedelta(seconds=2)
    assert [s.transaction_id for s in await citizen_data_requests(w.work, CITIZEN, 2, 1)] == [
        waiting.transaction_id
    ]


async def test_a_request_whose_signature_does_not_hold_never_shows_in_the_citizens_view() -> None:
    w = world()
    genuine = w.consumer.request()
    await take_request(w.work, genuine, now=NOW)
    # Anyone can name any citizen in a record they cannot sign.
    forged = w.consumer.request().model_copy(update={"purpose": "curiosity"})
    await take_request(w.work, forged, now=NOW + timedelta(seconds=1))

    seen = await citizen_data_requests(w.work, CITIZEN, 2, 100)

    assert [s.transaction_id for s in seen] == [genuine.transaction_id]


async def test_an_outcome_whose_payload_is_no_longer_kept_is_gone_with_its_digest() -> None:
    w = world()
    request = w.consumer.request()
    await take_request(w.work, request, now=NOW)
    answered = await take_answer(
        w.work, w.provider.provide(request.transaction_id, {"alive": True}), now=NOW
    )
    await forget_delivered_payloads(w.work, timedelta(hours=1), now=NOW + timedelta(hours=2))

    with pytest.raises(Gone) as error:
        await gateway_outcome(w.work, request.transaction_id, CONSUMER, must_exist=True)

    assert error.value.code == "exchange_payload_removed"
    assert error.value.detail == f"answered; payload sha256 {answered.payload_digest}"


async def test_an_unsigned_request_denied_before_this_release_stays_out_of_the_view() -> None:
    w = world()
    # What the exchange used to record for a request it could not verify.
    forged = replace(
        _audit_of_a_request(),
        outcome="denied",
        reason="bad_signature: the signature does not verify",
    )
    await w.work.append_audit(forged, NOW)
    denied = replace(_audit_of_a_request(), outcome="denied", reason="no_access_right: none")
    await w.work.append_audit(denied, NOW)

    seen = await citizen_data_requests(w.work, CITIZEN, 2, 100)

    assert [s.transaction_id for s in seen] == [denied.transaction_id]


def _audit_of_a_request() -> AuditEntry:
    return AuditEntry(
        transaction_id=uuid.uuid4(),
        kind="request",
        outcome="forwarded",
        consumer=CONSUMER,
        provider=PROVIDER,
        data_service=SERVICE_ID,
        purpose="benefit-eligibility",
        legal_basis=None,
        citizen=CITIZEN,
        reason=None,
        content_digest=None,
        signature=None,
    )
