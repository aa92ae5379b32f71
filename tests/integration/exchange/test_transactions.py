"""Transactions end to end on the real broker and database, agencies on the client library.

The exchange runs in-process (its whole lifespan: consumers, relay, sweeper); a consumer
agency uses `ExchangeClient`, a provider agency `ProviderWorker`. Every test has its own
transaction ids and looks only at records about them.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import TopicAuthorizationFailedError
from panjereh_agency import (
    Denied,
    ExchangeClient,
    ExchangeKeys,
    Failed,
    ProviderWorker,
    Refused,
    RefuseRequest,
    TimedOut,
)

from services.exchange.bootstrap import build
from services.exchange.domain.audit import AuditEntry, digest
from services.exchange.handlers import forget_delivered_payloads
from services.exchange.settings import ExchangeSettings
from services.exchange.storage import append_audit
from shared.db import Pool, create_pool
from shared.envelope import Envelope
from shared.events.exchange import (
    DataProvided,
    DataRequestCompleted,
    DataRequested,
    DataRequestForwarded,
)
from shared.events.identity import AgencyKeyRevoked
from shared.kafka import new_producer, publish
from shared.kafka_access import KafkaAccess
from shared.principals import PRINCIPAL_SPECS, Principal
from shared.registry import UndecodableEvent, decode
from shared.sealing import Sealer, is_sealed
from shared.signing import canonical, generate_key, sign_event
from shared.topics import Topic, channel, dead_letter_of
from tests.groups import until_settled
from tests.integration.exchange.helpers import (
    ISSUER,
    AgencySystem,
    Issuer,
    announce,
    announce_world,
    eventually,
    grant,
    register_data_service,
    run_id,
)
from tests.integration.kafka_helpers import read_all

pytestmark = pytest.mark.integration

CITIZEN = "7e" * 32


@dataclass
class World:
    kafka: KafkaAccess
    http: httpx.AsyncClient
    pool: Pool
    issuer: Issuer
    consumer: AgencySystem
    provider: AgencySystem
    client: ExchangeClient
    worker: ProviderWorker
    services: dict[str, str]
    consumer_kafka: KafkaAccess
    exchange_keys: ExchangeKeys

    @property
    def outcomes(self) -> str:
        """The consumer agency's outcome channel."""
        return channel(Topic.AGENCY_OUTCOMES, self.consumer.code)


async def answer_vital_status(request: DataRequestForwarded) -> dict[str, Any]:
    if request.payload.get("sealed"):
        raise RefuseRequest("record under judicial seal")
    return {"alive": True}


async def answer_slowly(request: DataRequestForwarded) -> dict[str, Any]:
    await asyncio.sleep(1.5)
    return {"alive": True}


async def answer_badly(request: DataRequestForwarded) -> dict[str, Any]:
    return {"alive": "perhaps"}


@pytest.fixture(scope="module")
async def world(
    kafka_admin: KafkaAccess,
    agency_kafka: Callable[[str], Awaitable[KafkaAccess]],
    credentials_file: Callable[[str], str],
    database_urls: Mapping[str, str],
) -> AsyncIterator[World]:
    database_url = database_urls["exchange"]
    app = build(
        ExchangeSettings(
            kafka_credentials_file=credentials_file("exchange"),
            database_url=database_url,
            token_issuer=ISSUER,
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://exchange") as http:
            run = run_id()
            issuer = Issuer()
            consumer, provider = AgencySystem(f"ss-{run}"), AgencySystem(f"cr-{run}")
            await announce_world(kafka_admin, database_url, issuer, consumer, provider)
            # Each agency's system connects as itself, with what the platform issued it.
            consumer_kafka = await agency_kafka(consumer.code)
            provider_kafka = await agency_kafka(provider.code)
            # The exchange finds new agencies' channels by pattern, then its group
            # rebalances: provisioning, not a transaction's time, so it is waited out.
            await until_settled(
                kafka_admin,
                PRINCIPAL_SPECS[Principal.EXCHANGE].groups[0],
                [
                    channel(Topic.AGENCY_REQUESTS, consumer.code),
                    channel(Topic.AGENCY_ANSWERS, provider.code),
                ],
                timeout=60,
            )
            keys = (await http.get("/keys")).json()["keys"]
            exchange_keys = ExchangeKeys(keys={key["kid"]: key for key in keys})
            services = {
                "vital": await register_data_service(http, issuer, provider, "vital-status"),
                "slow": await register_data_service(
                    http, issuer, provider, "slow-status", timeout_ms=300
                ),
                "broken": await register_data_service(http, issuer, provider, "broken-status"),
                "unrighted": await register_data_service(http, issuer, provider, "report-card"),
            }
            for name in ("vital", "slow", "broken"):
                await grant(http, issuer, consumer, services[name])
            worker = ProviderWorker(
                provider_kafka,
                provider.code,
                provider.key,
                provider.kid,
                {
                    services["vital"]: answer_vital_status,
                    services["slow"]: answer_slowly,
                    services["broken"]: answer_badly,
                },
                exchange_keys=exchange_keys,
            )
            worker_task = asyncio.create_task(worker.run())
            await asyncio.wait_for(worker.wait_ready(), 60)
            pool = await create_pool(database_url, "exchange", max_size=2)
            client = ExchangeClient(
                consumer_kafka,
                consumer.code,
                consumer.key,
                consumer.kid,
                exchange_keys=exchange_keys,
            )
            await client.start()
            try:
                yield World(
                    kafka_admin,
                    http,
                    pool,
                    issuer,
                    consumer,
                    provider,
                    client,
                    worker,
                    services,
                    consumer_kafka,
                    exchange_keys,
                )
            finally:
                await client.stop()
                await worker.stop()
                await asyncio.wait_for(worker_task, 30)
                await pool.close()


async def audit_of(world: World, transaction_id: uuid.UUID) -> list[Any]:
    rows: list[Any] = await world.pool.fetch(
        "SELECT * FROM audit_log WHERE transaction_id = $1 ORDER BY recorded_at, seq",
        transaction_id,
    )
    return rows


async def events_about(
    world: World, topic_name: str, transaction_id: uuid.UUID, count: int = 1
) -> list[Any]:
    """Every event on a topic about one transaction (read until `count` are there)."""

    def about(records: list[Any]) -> list[Any]:
        found = []
        for record in records:
            # Other tests put malformed records on shared topics on purpose: skip them.
            try:
                payload = decode(record.value, topic_name).payload
            except UndecodableEvent:
                continue
            if getattr(payload, "transaction_id", None) == transaction_id:
                found.append(payload)
        return found

    records = await read_all(
        world.kafka, topic_name, until=lambda rs: len(about(rs)) >= count, timeout=30
    )
    return about(records)


async def finished(world: World, transaction_id: uuid.UUID) -> tuple[Any, Any]:
    """The transaction's single outcome and single monitoring record."""
    (outcome,) = await events_about(world, world.outcomes, transaction_id)
    (monitoring,) = await events_about(world, Topic.EXCHANGE_TRANSACTIONS, transaction_id)
    return outcome, monitoring


async def ended_as(world: World, transaction_id: uuid.UUID, outcome: str) -> tuple[Any, Any]:
    """The transaction's single outcome and monitoring record, both asserted to be `outcome`."""
    delivered, monitoring = await finished(world, transaction_id)
    assert delivered.outcome == outcome
    assert monitoring.outcome == outcome
    return delivered, monitoring


async def ask_about_the_citizen(
    client: ExchangeClient, data_service: str, **payload: Any
) -> dict[str, Any]:
    """`client` asks `data_service` about CITIZEN for benefit eligibility: the answer."""
    return await client.request(
        data_service, "benefit-eligibility", {"citizen": CITIZEN, **payload}, citizen=CITIZEN
    )


def client_on_the_consumers_channel(
    world: World, agency: str, key: Any, kid: str, *, instance: str, **options: Any
) -> ExchangeClient:
    """A client of its own on the consumer's channel, signing as `agency` with `key`/`kid`."""
    return ExchangeClient(
        world.consumer_kafka,
        agency,
        key,
        kid,
        exchange_keys=world.exchange_keys,
        instance=instance,
        **options,
    )


def unsigned_request(world: World, consumer: str) -> DataRequested:
    """A request about CITIZEN to the vital-status service in `consumer`'s name, unsigned."""
    return DataRequested(
        transaction_id=uuid.uuid4(),
        consumer=consumer,
        data_service=world.services["vital"],
        purpose="benefit-eligibility",
        payload={"citizen": CITIZEN},
        citizen=CITIZEN,
        signature="-",
    )


async def test_an_answered_request_returns_the_answer_with_its_audit_and_monitoring(
    world: World,
) -> None:
    transaction_id, future = await world.client.send(
        world.services["vital"], "benefit-eligibility", {"citizen": CITIZEN}, citizen=CITIZEN
    )
    outcome = await asyncio.wait_for(future, 30)
    assert ExchangeClient.result_of(outcome) == {"alive": True}

    delivered, monitoring = await ended_as(world, transaction_id, "answered")
    assert delivered.consumer == world.consumer.code
    assert monitoring.provider == world.provider.code
    assert monitoring.request_bytes > 0
    assert monitoring.response_bytes > 0
    assert monitoring.provider_ms is not None
    assert monitoring.personal_data
    audit = await audit_of(world, transaction_id)
    assert [(r["kind"], r["outcome"]) for r in audit] == [
        ("request", "forwarded"),
        ("response", "answered"),
    ]
    assert all(r["citizen"] == CITIZEN for r in audit)
    assert all(len(r["content_digest"]) == 64 for r in audit)
    assert CITIZEN not in json.dumps([r["content_digest"] for r in audit])


async def test_request_answers_with_the_payload_through_the_client(world: World) -> None:
    answer = await ask_about_the_citizen(world.client, world.services["vital"])
    assert answer == {"alive": True}


async def test_a_request_without_a_right_is_denied_with_the_reason(world: World) -> None:
    with pytest.raises(Denied) as denied:
        await ask_about_the_citizen(world.client, world.services["unrighted"])
    assert denied.value.reason.startswith("no_access_right")
    _, monitoring = await ended_as(world, denied.value.transaction_id, "denied")
    assert monitoring.provider_ms is None
    audit = await audit_of(world, denied.value.transaction_id)
    assert [(r["kind"], r["outcome"]) for r in audit] == [("request", "denied")]
    assert audit[0]["reason"].startswith("no_access_right")


async def test_a_request_with_a_bad_signature_is_denied_and_recorded_as_unverified(
    world: World,
) -> None:
    citizen = uuid.uuid4().hex * 2
    impostor = client_on_the_consumers_channel(
        world, world.consumer.code, generate_key(), world.consumer.kid, instance="impostor"
    )
    async with impostor:
        with pytest.raises(Denied) as denied:
            await impostor.request(
                world.services["vital"], "curiosity", {"citizen": citizen}, citizen=citizen
            )
    assert denied.value.reason.startswith("bad_signature")
    await ended_as(world, denied.value.transaction_id, "denied")
    (record,) = await audit_of(world, denied.value.transaction_id)
    assert (record["outcome"], record["citizen"]) == ("unverified", None)
    assert record["reason"].startswith("bad_signature")
    row = await world.pool.fetchrow(
        "SELECT citizen FROM transactions WHERE transaction_id = $1", denied.value.transaction_id
    )
    assert row["citizen"] is None
    # The citizen it named sees nothing: nobody is known to have asked about them.
    response = await world.http.get(
        "/citizens/me/data-requests", headers=world.issuer.headers(citizen, loa=2)
    )
    assert response.status_code == 200, response.text
    assert response.json()["requests"] == []


async def test_a_providers_refusal_reaches_the_consumer_with_its_reason(world: World) -> None:
    with pytest.raises(Refused) as refused:
        await ask_about_the_citizen(world.client, world.services["vital"], sealed=True)
    assert "record under judicial seal" in refused.value.reason
    await ended_as(world, refused.value.transaction_id, "refused")
    audit = await audit_of(world, refused.value.transaction_id)
    assert [(r["kind"], r["outcome"]) for r in audit] == [
        ("request", "forwarded"),
        ("response", "refused"),
    ]


async def test_a_silent_provider_times_out_and_its_late_answer_changes_nothing(
    world: World,
) -> None:
    with pytest.raises(TimedOut) as timed_out:
        await ask_about_the_citizen(world.client, world.services["slow"])
    transaction_id = timed_out.value.transaction_id
    assert timed_out.value.reason.startswith("timed_out")
    await ended_as(world, transaction_id, "timed_out")

    async def late_answer_recorded() -> list[Any] | None:
        audit = await audit_of(world, transaction_id)
        return audit if any(r["kind"] == "late_response" for r in audit) else None

    audit = await eventually(late_answer_recorded)
    assert [(r["kind"], r["outcome"]) for r in audit] == [
        ("request", "forwarded"),
        ("timeout", "timed_out"),
        ("late_response", "ignored"),
    ]
    row = await world.pool.fetchrow(
        "SELECT status FROM transactions WHERE transaction_id = $1", transaction_id
    )
    assert row["status"] == "timed_out"
    assert len(await events_about(world, world.outcomes, transaction_id)) == 1


async def test_an_answer_breaking_the_response_schema_fails(world: World) -> None:
    with pytest.raises(Failed) as failed:
        await ask_about_the_citizen(world.client, world.services["broken"])
    assert failed.value.reason.startswith("invalid_answer")
    outcome, _ = await ended_as(world, failed.value.transaction_id, "failed")
    assert outcome.payload is None


async def test_a_request_signed_with_a_revoked_key_is_denied(
    world: World, kafka_admin: KafkaAccess
) -> None:
    agency = AgencySystem(world.consumer.code)
    await announce(kafka_admin, (agency.key_published(), agency.kid))
    await announce(
        kafka_admin,
        (AgencyKeyRevoked(agency=agency.code, kid=agency.kid, reason="leaked"), agency.kid),
    )

    async def revoked() -> bool:
        row = await world.pool.fetchrow(
            "SELECT revoked_at FROM agency_keys WHERE kid = $1", agency.kid
        )
        return row is not None and row["revoked_at"] is not None

    await eventually(revoked)
    async with client_on_the_consumers_channel(
        world, agency.code, agency.key, agency.kid, instance="revoked-key"
    ) as client:
        with pytest.raises(Denied) as denied:
            await ask_about_the_citizen(client, world.services["vital"])
    assert denied.value.reason.startswith("key_revoked")


async def test_a_replayed_request_gets_exactly_one_outcome(world: World) -> None:
    request = unsigned_request(world, world.consumer.code)
    request = request.model_copy(
        update={"signature": sign_event(request, world.consumer.key, world.consumer.kid)}
    )
    envelope = Envelope.wrap(request, source="tests", subject=world.consumer.code)
    again = Envelope.wrap(request, source="tests", subject=world.consumer.code)
    # The same event twice (a redelivery), and the same request in a new event (a replay).
    producer = new_producer(world.kafka, client_id="replays")
    await producer.start()
    try:
        for each in (envelope, envelope, again):
            await publish(producer, each)
    finally:
        await producer.stop()
    outcome, _ = await finished(world, request.transaction_id)
    assert outcome.outcome == "answered"
    await asyncio.sleep(2)  # give any duplicate time to appear
    outcomes = await events_about(world, world.outcomes, request.transaction_id)
    assert len(outcomes) == 1
    assert len(await audit_of(world, request.transaction_id)) == 2


async def test_a_citizen_sees_which_agencies_asked_about_them_and_why(world: World) -> None:
    citizen = uuid.uuid4().hex * 2
    await world.client.request(
        world.services["vital"], "benefit-eligibility", {"citizen": citizen}, citizen=citizen
    )
    low = world.issuer.headers(citizen, loa=1)
    assert (await world.http.get("/citizens/me/data-requests", headers=low)).status_code == 403
    response = await world.http.get(
        "/citizens/me/data-requests", headers=world.issuer.headers(citizen, loa=2)
    )
    assert response.status_code == 200, response.text
    (entry,) = response.json()["requests"]
    assert entry["consumer"] == world.consumer.code
    assert entry["consumer_name_en"] == f"Agency {world.consumer.code}"
    assert entry["purpose"] == "benefit-eligibility"
    assert entry["legal_basis"] is None or "Law" in entry["legal_basis"]
    assert entry["outcome"] == "answered"
    assert entry["at_jalali"].startswith("14")


async def test_an_unsigned_request_denied_before_this_release_stays_out_of_the_view(
    world: World,
) -> None:
    citizen = uuid.uuid4().hex * 2
    # What the exchange used to record for a request whose signature did not hold.
    recorded = AuditEntry(
        transaction_id=uuid.uuid4(),
        kind="request",
        outcome="denied",
        consumer=world.consumer.code,
        provider=world.provider.code,
        data_service=world.services["vital"],
        purpose="curiosity",
        legal_basis=None,
        citizen=citizen,
        reason="unknown_key: no key forged-1 is published",
        content_digest=None,
        signature=None,
    )
    async with world.pool.acquire() as connection, connection.transaction():
        await append_audit(connection, recorded, datetime.now(UTC))

    response = await world.http.get(
        "/citizens/me/data-requests", headers=world.issuer.headers(citizen, loa=2)
    )

    assert response.status_code == 200, response.text
    assert response.json()["requests"] == []


async def test_the_http_gateway_answers_a_signed_request_after_the_same_checks(
    world: World,
) -> None:
    request = world.client.sign(unsigned_request(world, world.consumer.code))
    headers = world.issuer.headers(
        "ss-system", agency=world.consumer.code, scope="exchange:request"
    )
    response = await world.http.post(
        "/gateway/requests", content=request.model_dump_json(), headers=headers
    )
    assert response.status_code == 200, response.text
    completed = DataRequestCompleted.model_validate_json(response.content)
    assert completed.outcome == "answered"
    assert completed.payload == {"alive": True}

    forged = request.model_copy(update={"transaction_id": uuid.uuid4()})
    response = await world.http.post(
        "/gateway/requests", content=forged.model_dump_json(), headers=headers
    )
    assert response.status_code == 200
    assert response.json()["outcome"] == "denied"
    assert response.json()["reason"].startswith("bad_signature")

    other = world.issuer.headers("x", agency=world.provider.code, scope="exchange:request")
    response = await world.http.post(
        "/gateway/requests", content=request.model_dump_json(), headers=other
    )
    assert response.status_code == 403


async def test_a_revoked_right_denies_later_requests(world: World) -> None:
    data_service = await register_data_service(
        world.http, world.issuer, world.provider, f"revocable-{run_id()}"
    )
    right_id = await grant(world.http, world.issuer, world.consumer, data_service)
    admin = world.issuer.headers("exchange-admin", scope="exchange:admin")
    response = await world.http.post(
        f"/access-rights/{right_id}/revocation", json={"reason": "agreement ended"}, headers=admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["revoked_by"] == "exchange-admin"
    again = await world.http.post(
        f"/access-rights/{right_id}/revocation", json={"reason": "again"}, headers=admin
    )
    assert again.status_code == 409
    with pytest.raises(Denied) as denied:
        await ask_about_the_citizen(world.client, data_service)
    assert denied.value.reason.startswith("no_access_right")


async def test_grants_and_revocations_record_who_made_them(world: World) -> None:
    data_service = await register_data_service(
        world.http, world.issuer, world.provider, f"attributed-{run_id()}"
    )
    right_id = await grant(world.http, world.issuer, world.consumer, data_service)
    operator = world.issuer.headers("operator-on-duty", scope="exchange:admin")
    response = await world.http.post(
        f"/access-rights/{right_id}/revocation", json={"reason": "audit finding"}, headers=operator
    )
    assert response.status_code == 200, response.text

    response = await world.http.get(f"/access-rights/{right_id}", headers=operator)
    assert response.status_code == 200, response.text
    right = response.json()
    assert (right["granted_by"], right["revoked_by"], right["revoked_reason"]) == (
        "exchange-admin",
        "operator-on-duty",
        "audit finding",
    )
    unscoped = world.issuer.headers("x", agency=world.consumer.code, scope="exchange:request")
    assert (await world.http.get(f"/access-rights/{right_id}", headers=unscoped)).status_code == 403
    records = await read_all(
        world.kafka,
        Topic.EXCHANGE_ACCESS_RIGHTS.value,
        until=lambda found: len(_about(found, right_id)) >= 2,
    )
    granted, revoked = _about(records, right_id)
    assert (granted.schema_version, granted.payload.granted_by) == (2, "exchange-admin")
    assert (revoked.schema_version, revoked.payload.revoked_by) == (2, "operator-on-duty")


def _about(records: list[Any], right_id: str) -> list[Envelope[Any]]:
    """The access-rights register's events about one right, in order."""
    envelopes = [decode(record.value) for record in records]
    return [e for e in envelopes if str(getattr(e.payload, "right_id", "")) == right_id]


async def test_a_delivered_payload_is_kept_for_its_retention_period_then_only_its_digest(
    world: World,
) -> None:
    transaction_id, future = await world.client.send(
        world.services["vital"], "benefit-eligibility", {"citizen": CITIZEN}, citizen=CITIZEN
    )
    await asyncio.wait_for(future, 30)
    headers = world.issuer.headers(
        "ss-system", agency=world.consumer.code, scope="exchange:request"
    )
    path = f"/gateway/requests/{transaction_id}"

    async def delivered() -> bool:
        row = await world.pool.fetchrow(
            "SELECT o.published_at FROM transactions t JOIN outbox o"
            " ON o.event_id = t.completion_event_id WHERE t.transaction_id = $1",
            transaction_id,
        )
        return row is not None and row["published_at"] is not None

    await eventually(delivered)
    later = datetime.now(UTC) + timedelta(seconds=1)
    # Within the period it stays.
    await forget_delivered_payloads(world.pool, timedelta(hours=1), now=later)
    assert (await world.http.get(path, headers=headers)).json()["payload"] == {"alive": True}

    while await forget_delivered_payloads(world.pool, timedelta(0), now=later):
        pass

    row = await world.pool.fetchrow(
        "SELECT completion, payload_digest, payload_removed_at FROM transactions"
        " WHERE transaction_id = $1",
        transaction_id,
    )
    assert row["completion"]["payload"] is None
    assert row["completion"]["outcome"] == "answered"
    assert row["payload_digest"] == digest(canonical({"alive": True}))
    assert row["payload_removed_at"] is not None
    response = await world.http.get(path, headers=headers)
    assert response.status_code == 410
    assert response.json()["code"] == "exchange_payload_removed"


async def test_a_payload_not_yet_delivered_is_kept_past_its_retention_period(
    world: World,
) -> None:
    transaction_id, future = await world.client.send(
        world.services["vital"], "benefit-eligibility", {"citizen": CITIZEN}, citizen=CITIZEN
    )
    await asyncio.wait_for(future, 30)
    # As if its outcome's event were still waiting in the outbox for the relay.
    await world.pool.execute(
        "UPDATE outbox SET published_at = now() + interval '1 day' WHERE event_id ="
        " (SELECT completion_event_id FROM transactions WHERE transaction_id = $1)",
        transaction_id,
    )

    while await forget_delivered_payloads(
        world.pool, timedelta(0), now=datetime.now(UTC) + timedelta(seconds=1)
    ):
        pass

    row = await world.pool.fetchrow(
        "SELECT completion, payload_removed_at FROM transactions WHERE transaction_id = $1",
        transaction_id,
    )
    assert row["completion"]["payload"] == {"alive": True}
    assert row["payload_removed_at"] is None


async def test_the_admin_api_refuses_what_no_one_may_register(world: World) -> None:
    provider = world.issuer.headers("x", agency=world.consumer.code, scope="exchange:provide")
    body = {
        "data_service": f"{world.provider.code}.stolen",
        "version": 1,
        "name_fa": "دزدی",
        "name_en": "Stolen",
        "request_schema": {},
        "response_schema": {},
        "timeout_ms": 1000,
        "purposes": ["x"],
        "personal_data": False,
    }
    response = await world.http.post("/data-services", json=body, headers=provider)
    assert response.status_code == 403
    assert response.headers["content-type"].startswith("application/problem+json")
    unscoped = world.issuer.headers("x", agency=world.provider.code, scope="")
    assert (await world.http.post("/data-services", json=body, headers=unscoped)).status_code == 403
    admin = world.issuer.headers("exchange-admin", scope="exchange:admin")
    right = {
        "consumer": world.consumer.code,
        "data_service": world.services["vital"],
        "purposes": ["curiosity"],
        "legal_basis": "none",
        "valid_from": "2026-01-01T00:00:00Z",
    }
    response = await world.http.post("/access-rights", json=right, headers=admin)
    assert response.status_code == 422
    assert response.json()["code"] == "exchange_purpose_not_served"


async def test_an_answer_to_no_transaction_is_dead_lettered_and_the_rest_goes_on(
    world: World,
) -> None:
    bogus = DataProvided(
        transaction_id=uuid.uuid4(),
        provider=world.provider.code,
        payload={"alive": True},
        signature="-",
    )
    bogus = bogus.model_copy(
        update={"signature": sign_event(bogus, world.provider.key, world.provider.kid)}
    )
    producer = new_producer(world.kafka, client_id="bogus-answers")
    await producer.start()
    try:
        await publish(
            producer,
            Envelope.wrap(bogus, source="tests", subject=str(bogus.transaction_id)),
        )
    finally:
        await producer.stop()
    answer = await ask_about_the_citizen(world.client, world.services["vital"])
    assert answer == {"alive": True}

    def ours(records: list[Any]) -> list[Any]:
        return [r for r in records if str(bogus.transaction_id).encode() in (r.value or b"")]

    dead = await read_all(
        world.kafka,
        dead_letter_of(channel(Topic.AGENCY_ANSWERS, world.provider.code)),
        until=lambda rs: bool(ours(rs)),
    )
    (record,) = ours(dead)
    reason = dict(record.headers).get("dlq-reason", b"").decode()
    assert "unknown_transaction" in reason
    assert await audit_of(world, bogus.transaction_id) == []


async def test_a_key_record_cannot_move_a_known_kid_to_another_agency_or_key(
    world: World,
) -> None:
    kid = world.provider.kid
    # Another agency claims the provider's kid; then the provider's own code with a new key.
    impostor = AgencySystem(f"ev-{run_id()}", kid=kid)
    swapped = AgencySystem(world.provider.code, kid=kid)
    await announce(
        world.kafka,
        (impostor.recorded(), impostor.code),
        (impostor.key_published(), kid),
        (swapped.key_published(), kid),
    )

    def ours(records: list[Any]) -> list[Any]:
        return [r for r in records if r.key == kid.encode()]

    dead = await read_all(
        world.kafka,
        dead_letter_of(Topic.IDENTITY_AGENCY_KEYS),
        until=lambda rs: len(ours(rs)) >= 2,
    )
    reasons = [dict(r.headers).get("dlq-reason", b"").decode() for r in ours(dead)]
    assert len(reasons) == 2
    assert all("kid_taken" in reason for reason in reasons)
    row = await world.pool.fetchrow("SELECT agency, jwk FROM agency_keys WHERE kid = $1", kid)
    assert row["agency"] == world.provider.code
    assert row["jwk"] == world.provider.key_published().jwk
    # The provider still answers with its own key.
    answer = await ask_about_the_citizen(world.client, world.services["vital"])
    assert answer == {"alive": True}


async def test_the_signing_key_is_sealed_in_the_database(world: World) -> None:
    published = (await world.http.get("/keys")).json()["keys"]
    rows = await world.pool.fetch(
        "SELECT kid, private_jwk, private_jwk::text AS raw FROM signing_keys"
    )
    assert {row["kid"] for row in rows} == {key["kid"] for key in published}
    sealer = Sealer(ExchangeSettings().data_key_bytes)
    for row in rows:
        assert is_sealed(row["private_jwk"])
        private = sealer.open(row["private_jwk"], binding=f"exchange.signing_keys:{row['kid']}")
        assert private["d"] not in row["raw"]
        assert '"d"' not in row["raw"]


@pytest.mark.allows_error_logs  # aiokafka logs the refused topic as an error
async def test_an_agency_can_neither_write_nor_read_another_agencys_channel(
    world: World,
) -> None:
    intruder = world.consumer_kafka
    provider = world.provider.code
    producer = AIOKafkaProducer(**intruder.client_options(), request_timeout_ms=5000)
    await producer.start()
    try:
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(
                producer.send_and_wait(channel(Topic.AGENCY_ANSWERS, provider), b"forged"), 20
            )
        with pytest.raises(TopicAuthorizationFailedError):
            await asyncio.wait_for(
                producer.send_and_wait(Topic.IDENTITY_ISSUER_KEYS.value, b"forged"), 20
            )
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(**intruder.client_options())
    await consumer.start()
    try:
        visible = await consumer.topics()
    finally:
        await consumer.stop()
    assert channel(Topic.AGENCY_FORWARDED, provider) not in visible
    assert channel(Topic.AGENCY_OUTCOMES, world.consumer.code) in visible


async def test_a_request_naming_another_agency_on_ones_own_channel_is_dead_lettered(
    world: World,
) -> None:
    # The consumer writes, on its own request channel, a request that claims to come from
    # the provider: the exchange believes the channel, not the field.
    forged = unsigned_request(world, world.provider.code)
    record = Envelope.wrap(forged, source="tests", subject=str(forged.transaction_id))
    own_channel = channel(Topic.AGENCY_REQUESTS, world.consumer.code)
    producer = new_producer(world.consumer_kafka, client_id="forgery")
    await producer.start()
    try:
        await producer.send_and_wait(own_channel, record.to_bytes(), key=record.key())
    finally:
        await producer.stop()

    def ours(records: list[Any]) -> list[Any]:
        return [r for r in records if str(forged.transaction_id).encode() in (r.value or b"")]

    dead = await read_all(world.kafka, dead_letter_of(own_channel), until=lambda rs: bool(ours(rs)))
    (refused,) = ours(dead)
    assert "wrong_channel" in dict(refused.headers)["dlq-reason"].decode()
    assert await audit_of(world, forged.transaction_id) == []


async def test_a_forwarded_request_the_exchange_did_not_sign_never_reaches_a_handler(
    world: World,
) -> None:
    served_before = world.worker.answered + world.worker.refused
    refused_before = world.worker.unsigned
    unsigned = DataRequestForwarded(
        transaction_id=uuid.uuid4(),
        consumer=world.consumer.code,
        provider=world.provider.code,
        data_service=world.services["vital"],
        purpose="benefit-eligibility",
        payload={"citizen": CITIZEN},
        citizen=CITIZEN,
        deadline=datetime.now(UTC) + timedelta(minutes=1),
        signature=sign_event({"forged": True}, world.consumer.key, world.consumer.kid),
    )
    # Written by someone with broker rights (the test, as admin), not by the exchange.
    await announce(world.kafka, (unsigned, str(unsigned.transaction_id)))

    async def refused() -> bool:
        return world.worker.unsigned > refused_before

    await eventually(refused)
    assert world.worker.answered + world.worker.refused == served_before
    forwarded = channel(Topic.AGENCY_FORWARDED, world.provider.code)
    dead = await read_all(
        world.kafka,
        dead_letter_of(forwarded),
        until=lambda rs: any(str(unsigned.transaction_id).encode() in (r.value or b"") for r in rs),
    )
    assert any(str(unsigned.transaction_id).encode() in (r.value or b"") for r in dead)


async def test_an_outcome_that_arrives_while_the_client_is_down_is_delivered_when_it_returns(
    world: World,
) -> None:
    delivered: list[DataRequestCompleted] = []

    async def keep(outcome: DataRequestCompleted) -> None:
        delivered.append(outcome)

    def client() -> ExchangeClient:
        return client_on_the_consumers_channel(
            world,
            world.consumer.code,
            world.consumer.key,
            world.consumer.kid,
            instance="restarting",
            on_outcome=keep,
        )

    async with client() as first:
        transaction_id, _ = await first.send(
            world.services["slow"], "benefit-eligibility", {"citizen": CITIZEN}, citizen=CITIZEN
        )
    # The client is down while the exchange answers (the slow service times out at 300 ms).
    await finished(world, transaction_id)
    async with client():

        async def arrived() -> bool:
            return any(o.transaction_id == transaction_id for o in delivered)

        await eventually(arrived)
