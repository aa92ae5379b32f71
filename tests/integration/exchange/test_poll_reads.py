"""A poll's requests and answers read their context in bulk, and read exactly what one
event at a time would: the same keys, agencies, data services, rights and transactions,
on the real database."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from services.exchange.domain.authorisation import signing_kid
from services.exchange.storage import ExchangeStorage
from services.exchange.use_cases.ports import AnswerContext, RequestContext
from shared.events.exchange import (
    AccessGranted,
    DataProvided,
    DataRefused,
    DataRequested,
    DataServiceRegistered,
)
from shared.events.identity import AgencyKeyPublished
from shared.registry import example_envelopes
from shared.unit_of_work import transaction
from tests.schemas import migrated_schema
from tests.unit.exchange.world import (
    CONSUMER,
    PROVIDER,
    RIGHT,
    SERVICE,
    Signer,
    pending,
    recorded,
)

pytestmark = pytest.mark.integration


def example(cls: type[Any], **fields: Any) -> Any:
    return example_envelopes(cls)[0].payload.model_copy(update=fields)


async def test_a_polls_read_ahead_reads_what_each_event_would_read_alone(
    admin_database_url: str,
) -> None:
    consumer, provider, stranger = Signer(CONSUMER), Signer(PROVIDER), Signer("stranger")
    forwarded = pending()
    async with migrated_schema(admin_database_url, "x", "exchange") as (_, pool):
        async with transaction(pool, ExchangeStorage) as work:
            for signer in (consumer, provider):
                await work.record_agency(recorded(signer.agency))
                key = signer.published()
                await work.record_agency_key(
                    example(
                        AgencyKeyPublished,
                        agency=signer.agency,
                        kid=key.kid,
                        jwk=key.jwk,
                        not_before=key.not_before,
                        expires_at=None,
                    )
                )
            await work.save_data_service(
                example(
                    DataServiceRegistered,
                    **{
                        name: getattr(SERVICE, name)
                        for name in (
                            "data_service",
                            "version",
                            "provider",
                            "request_schema",
                            "response_schema",
                            "timeout_ms",
                            "personal_data",
                        )
                    },
                    purposes=list(SERVICE.purposes),
                )
            )
            await work.save_right(
                example(
                    AccessGranted,
                    right_id=RIGHT.right_id,
                    consumer=CONSUMER,
                    data_service=SERVICE.data_service,
                    purposes=list(RIGHT.purposes),
                    valid_from=RIGHT.valid_from,
                    valid_until=None,
                )
            )
            await work.open_transaction(forwarded)
        events: list[DataRequested | DataProvided | DataRefused] = [
            consumer.request(),
            consumer.request(transaction_id=forwarded.transaction_id),  # an id already taken
            stranger.request(),  # a key nobody published, an agency nobody recorded
            consumer.request(data_service="civil-registration.unknown"),
            provider.provide(forwarded.transaction_id, {"alive": True}),
            stranger.provide(forwarded.transaction_id, {"alive": True}),
            provider.provide(uuid.uuid4(), {"alive": True}),  # no such transaction
        ]

        async def contexts(read_ahead: bool) -> list[RequestContext | AnswerContext | None]:
            async with pool.acquire() as connection, connection.transaction():
                work = ExchangeStorage(connection, bulk=True)
                if read_ahead:
                    await work.read_ahead(events)
                read: list[RequestContext | AnswerContext | None] = []
                for event in events:
                    kid, _ = signing_kid(event.signature)
                    if isinstance(event, DataRequested):
                        read.append(await work.request_context(kid, event))
                    else:
                        read.append(await work.answer_context(event.transaction_id, kid))
                return read

        alone, ahead = await contexts(read_ahead=False), await contexts(read_ahead=True)
    assert ahead == alone
    fresh, reused, unknown_agency, unknown_service = (
        context for context in alone[:4] if isinstance(context, RequestContext)
    )
    assert (fresh.taken, reused.taken, unknown_agency.taken) == (False, True, False)
    assert fresh.service == SERVICE
    assert [right.right_id for right in fresh.rights] == [RIGHT.right_id]
    assert fresh.key is not None
    assert fresh.key.kid == consumer.kid
    assert unknown_agency.key is None
    assert unknown_agency.consumer is None
    assert unknown_service.service is None
    assert unknown_service.rights == []
    answered, by_stranger = (
        context for context in alone[4:6] if isinstance(context, AnswerContext)
    )
    assert answered.transaction == forwarded
    assert answered.key is not None
    assert answered.response_schema == SERVICE.response_schema
    assert by_stranger.transaction == forwarded
    assert by_stranger.key is None
    assert alone[6] is None
