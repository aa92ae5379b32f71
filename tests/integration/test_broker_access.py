"""The real broker lets in only whom the registers name, and only for what they name.

Each attack of an outsider or of one principal against another is tried against the
session's broker (TLS, SCRAM, KRaft's StandardAuthorizer with the ACLs `panjereh init`
derived from the registers) and shown refused.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import (
    GroupAuthorizationFailedError,
    KafkaConnectionError,
    KafkaError,
    TopicAuthorizationFailedError,
    TransactionalIdAuthorizationFailed,
)

from shared.acl import allowed, declared_bindings
from shared.kafka_access import KafkaAccess
from shared.principals import Principal
from shared.topics import TOPICS, Topic
from tests.kcat import kcat

pytestmark = pytest.mark.integration

BINDINGS = declared_bindings()
# The platform's own topics: agencies' channels are tried in the exchange's tests.
PLATFORM_TOPICS = [spec for spec in TOPICS if not spec.per_agency]
USERS = [principal for principal in Principal if principal is not Principal.AGENCY]


@pytest.mark.allows_error_logs  # aiokafka logs the closed connection as an error
async def test_a_client_without_credentials_gets_not_even_metadata(
    kafka_admin: KafkaAccess,
) -> None:
    admin = AIOKafkaAdminClient(
        bootstrap_servers=kafka_admin.bootstrap_servers, request_timeout_ms=3000
    )
    with pytest.raises((KafkaConnectionError, KafkaError, asyncio.TimeoutError)):
        await asyncio.wait_for(admin.start(), 20)
    await admin.close()
    listing = kcat("-b", kafka_admin.bootstrap_servers, "-L", "-m", "5")
    assert listing.returncode != 0
    assert "Metadata for all topics" not in listing.stdout


@pytest.mark.allows_error_logs  # aiokafka logs the refused authentication as an error
async def test_a_wrong_password_is_refused(kafka_admin: KafkaAccess) -> None:
    intruder = kafka_admin.as_principal("identity", "not-the-password")
    admin = AIOKafkaAdminClient(**intruder.client_options(), request_timeout_ms=3000)
    with pytest.raises(KafkaError):
        await asyncio.wait_for(admin.start(), 30)
    await admin.close()


@pytest.mark.allows_error_logs  # aiokafka logs the refused authentication as an error
async def test_an_unknown_principal_is_refused(kafka_admin: KafkaAccess) -> None:
    nobody = kafka_admin.as_principal(f"nobody-{uuid.uuid4().hex[:6]}", "whatever")
    admin = AIOKafkaAdminClient(**nobody.client_options(), request_timeout_ms=3000)
    with pytest.raises(KafkaError):
        await asyncio.wait_for(admin.start(), 30)
    await admin.close()


async def _visible_topics(kafka: KafkaAccess) -> set[str]:
    consumer = AIOKafkaConsumer(**kafka.client_options())
    await consumer.start()
    try:
        return {t for t in await consumer.topics() if not t.startswith("__")}
    finally:
        await consumer.stop()


async def _write_refused(kafka: KafkaAccess, topic: str) -> bool:
    producer = AIOKafkaProducer(**kafka.client_options(), request_timeout_ms=5000)
    await producer.start()
    try:
        await asyncio.wait_for(producer.send_and_wait(topic, b"intruder"), 20)
    except TopicAuthorizationFailedError:
        return True
    finally:
        await producer.stop()
    return False


async def _read_refused(kafka: KafkaAccess, topic: str) -> bool:
    consumer = AIOKafkaConsumer(**kafka.client_options(), enable_auto_commit=False)
    await consumer.start()
    try:
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek(tp, 0)
        await asyncio.wait_for(consumer.getmany(tp, timeout_ms=3000), 20)
    except TopicAuthorizationFailedError:
        return True
    finally:
        await consumer.stop()
    return False


@pytest.mark.timeout(600)
@pytest.mark.allows_error_logs  # aiokafka logs each refused topic as an error
@pytest.mark.parametrize("principal", USERS, ids=str)
async def test_a_principal_is_refused_on_every_topic_the_register_does_not_name_it_on(
    principal: Principal, kafka_as: Callable[[str], KafkaAccess]
) -> None:
    kafka = kafka_as(principal)
    named = {s.name for s in PLATFORM_TOPICS if allowed(BINDINGS, principal, s.name, "describe")}
    declared = {spec.name for spec in PLATFORM_TOPICS}
    # Metadata shows a principal only the declared topics it is named on: of the others
    # it learns neither partitions nor leaders, so it has nowhere to fetch from.
    assert (await _visible_topics(kafka)) & declared == named
    not_writable = [
        s.name for s in PLATFORM_TOPICS if not allowed(BINDINGS, principal, s.name, "write")
    ]
    # A topic it may see but not read (one it only writes): the broker refuses the fetch.
    not_readable = [
        s.name
        for s in PLATFORM_TOPICS
        if s.name in named and not allowed(BINDINGS, principal, s.name, "read")
    ]
    writes = await asyncio.gather(*(_write_refused(kafka, topic) for topic in not_writable))
    reads = await asyncio.gather(*(_read_refused(kafka, topic) for topic in not_readable))
    assert [t for t, refused in zip(not_writable, writes, strict=True) if not refused] == []
    assert [t for t, refused in zip(not_readable, reads, strict=True) if not refused] == []


@pytest.mark.allows_error_logs  # aiokafka logs each refused topic as an error
async def test_an_agency_side_principal_cannot_publish_issuer_or_agency_keys(
    kafka_as: Callable[[str], KafkaAccess],
) -> None:
    agencies = kafka_as(Principal.SIMULATOR)
    assert await _write_refused(agencies, Topic.IDENTITY_ISSUER_KEYS)
    assert await _write_refused(agencies, Topic.IDENTITY_AGENCY_KEYS)


@pytest.mark.allows_error_logs  # aiokafka logs the refused topic as an error
async def test_the_simulator_reads_codes_only_as_the_gateway_delivers_them_in_development(
    kafka_as: Callable[[str], KafkaAccess], credentials_file: Callable[[str], str]
) -> None:
    simulator = kafka_as(Principal.SIMULATOR)
    assert Topic.IDENTITY_SMS.value not in await _visible_topics(simulator)
    codes = kcat(
        "-F", credentials_file(Principal.SIMULATOR), "-C", "-t", Topic.IDENTITY_SMS, "-o",
        "beginning", "-e",
    )  # fmt: skip
    assert codes.returncode != 0
    assert "authoriz" in (codes.stderr + codes.stdout).lower()
    assert await _write_refused(simulator, Topic.DEVELOPMENT_PHONES)
    assert not await _read_refused(simulator, Topic.DEVELOPMENT_PHONES)
    # Identity seals the codes but may not read them back, nor hand them to the phones.
    identity = kafka_as(Principal.IDENTITY)
    assert await _read_refused(identity, Topic.IDENTITY_SMS)
    assert await _write_refused(identity, Topic.DEVELOPMENT_PHONES)


async def test_a_service_cannot_join_another_services_group(
    kafka_as: Callable[[str], KafkaAccess],
) -> None:
    # The catalog may read identity's issuer keys, but not as the exchange's group.
    consumer = AIOKafkaConsumer(
        Topic.IDENTITY_ISSUER_KEYS.value,
        **kafka_as(Principal.CATALOG).client_options(),
        group_id="exchange",
        enable_auto_commit=False,
    )

    async def join_and_poll() -> None:
        await consumer.start()
        await asyncio.wait_for(consumer.getmany(timeout_ms=5000), 30)

    with pytest.raises(GroupAuthorizationFailedError):
        await join_and_poll()
    await consumer.stop()


async def test_a_service_cannot_take_another_relays_transactional_id(
    kafka_as: Callable[[str], KafkaAccess],
) -> None:
    producer = AIOKafkaProducer(
        **kafka_as(Principal.CATALOG).client_options(),
        transactional_id="identity-outbox-relay",
        enable_idempotence=True,
    )
    with pytest.raises(TransactionalIdAuthorizationFailed):
        await asyncio.wait_for(producer.start(), 30)
    await producer.stop()


def test_kcat_with_the_analyst_file_lists_topics_and_reads_only_the_figures(
    infrastructure: object,
) -> None:
    path = infrastructure.credentials_file("analyst")  # type: ignore[attr-defined]
    listing = kcat("-F", str(path), "-L", "-m", "10")
    assert listing.returncode == 0, listing.stderr
    assert f'topic "{Topic.METRICS_EXCHANGE.value}"' in listing.stdout
    assert f'topic "{Topic.IDENTITY_SMS.value}"' not in listing.stdout
    figures = kcat("-F", str(path), "-C", "-t", Topic.METRICS_EXCHANGE, "-o", "beginning", "-e")
    assert figures.returncode == 0, figures.stderr
    codes = kcat("-F", str(path), "-C", "-t", Topic.IDENTITY_SMS, "-o", "beginning", "-e")
    assert codes.returncode != 0
    assert "authoriz" in (codes.stderr + codes.stdout).lower()
