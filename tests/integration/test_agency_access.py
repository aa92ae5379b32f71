"""An agency's credentials through their life: issued when the catalog registers it,
rotated without a moment of refusal, and cut off within seconds when it is deactivated."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

import infra.platform.access
import infra.platform.provision
from infra.access.agencies import read_agencies
from infra.platform.access import BrokerAccess
from shared.events.platform import ChannelsOpened
from shared.kafka_access import KafkaAccess
from shared.principals import agency_principal
from shared.registry import UndecodableEvent, decode
from shared.topics import SPECS, TOPICS, Topic, channel
from tests import polling
from tests.integration.exchange.helpers import AgencySystem, announce, eventually
from tests.integration.kafka_helpers import read_all
from tests.kcat import kcat

pytestmark = pytest.mark.integration

PER_AGENCY = [spec.name for spec in TOPICS if spec.per_agency]


async def topics_on(kafka_admin: KafkaAccess) -> set[str]:
    admin = AIOKafkaAdminClient(**kafka_admin.client_options())
    await admin.start()
    try:
        return set(await admin.list_topics())
    finally:
        await admin.close()


async def can_write(access: KafkaAccess, topic: str) -> bool:
    """Whether `access` may publish on `topic` now (a fresh connection, so a fresh login)."""
    producer = AIOKafkaProducer(**access.client_options(), request_timeout_ms=5000)
    try:
        await asyncio.wait_for(producer.start(), 15)
        await asyncio.wait_for(producer.send_and_wait(topic, b"probe"), 15)
    except (KafkaError, TimeoutError):
        return False
    finally:
        await producer.stop()
    return True


@pytest.mark.allows_error_logs  # aiokafka logs the refused logins and topics as errors
async def test_a_deactivated_agency_is_cut_off_within_seconds(
    kafka_admin: KafkaAccess,
    agency_kafka: Callable[[str], Awaitable[KafkaAccess]],
    infrastructure: Any,
) -> None:
    agency = AgencySystem(f"rv-{uuid.uuid4().hex[:8]}")
    await announce(kafka_admin, (agency.recorded(), agency.code))
    access = await agency_kafka(agency.code)
    requests = channel(Topic.AGENCY_REQUESTS, agency.code)
    assert await can_write(access, requests)
    # A producer connected before the deactivation, as a running system would be.
    connected = AIOKafkaProducer(**access.client_options(), request_timeout_ms=5000)
    await connected.start()
    try:
        await connected.send_and_wait(requests, b"before")
        gone = agency.recorded().model_copy(update={"active": False, "revision": 2})
        await announce(kafka_admin, (gone, agency.code))

        async def refused() -> bool:
            try:
                await asyncio.wait_for(connected.send_and_wait(requests, b"after"), 10)
            except (KafkaError, TimeoutError):
                return True
            return False

        started = asyncio.get_running_loop().time()
        await eventually(refused, timeout=30)
        assert asyncio.get_running_loop().time() - started < 30
    finally:
        await connected.stop()
    assert not await can_write(access, requests)
    credentials = infrastructure.credentials_file(agency_principal(agency.code))
    assert not credentials.exists()
    users = BrokerAccess(kafka_admin, infrastructure.kafka.passwords).users()
    assert agency_principal(agency.code) not in users


@pytest.mark.allows_error_logs  # the old secret, once retired, is refused (logged)
async def test_a_rotated_secret_works_beside_the_old_one_until_the_old_is_retired(
    kafka_admin: KafkaAccess,
    agency_kafka: Callable[[str], Awaitable[KafkaAccess]],
    infrastructure: Any,
) -> None:
    agency = AgencySystem(f"rt-{uuid.uuid4().hex[:8]}")
    await announce(kafka_admin, (agency.recorded(), agency.code))
    old = await agency_kafka(agency.code)
    requests = channel(Topic.AGENCY_REQUESTS, agency.code)
    broker = BrokerAccess(kafka_admin, infrastructure.kafka.passwords)
    principal = agency_principal(agency.code)

    mechanism = broker.rotate(principal, infrastructure.kafka.passwords)
    new = infrastructure.kafka_access(principal)
    assert new.mechanism == mechanism != old.mechanism
    assert new.password != old.password
    # During the switch both work: clients move over one by one.
    assert await can_write(new, requests)
    assert await can_write(old, requests)

    assert broker.retire_previous(principal, infrastructure.kafka.passwords)
    assert await can_write(new, requests)
    assert not await can_write(replace(old), requests)


async def test_kcat_with_an_agencys_file_can_touch_neither_another_channel_nor_the_keys(
    kafka_admin: KafkaAccess,
    agency_kafka: Callable[[str], Awaitable[KafkaAccess]],
    infrastructure: Any,
) -> None:
    mine, other = (
        AgencySystem(f"kc-{uuid.uuid4().hex[:8]}"),
        AgencySystem(f"ko-{uuid.uuid4().hex[:8]}"),
    )
    await announce(kafka_admin, (mine.recorded(), mine.code), (other.recorded(), other.code))
    await agency_kafka(mine.code)
    await agency_kafka(other.code)
    credentials = str(infrastructure.credentials_file(agency_principal(mine.code)))

    listing = await asyncio.to_thread(kcat, "-F", credentials, "-L", "-m", "10")
    assert listing.returncode == 0, listing.stderr
    assert channel(Topic.AGENCY_OUTCOMES, mine.code) in listing.stdout
    assert channel(Topic.AGENCY_OUTCOMES, other.code) not in listing.stdout

    theirs = channel(Topic.AGENCY_OUTCOMES, other.code)
    read = await asyncio.to_thread(
        kcat, "-F", credentials, "-C", "-t", theirs, "-o", "beginning", "-e", timeout=60
    )
    assert read.returncode != 0
    keys = await asyncio.to_thread(
        kcat, "-F", credentials, "-P", "-t", Topic.IDENTITY_ISSUER_KEYS.value, stdin="forged"
    )
    assert keys.returncode != 0
    assert "authoriz" in (keys.stderr + keys.stdout).lower()


async def test_the_manager_says_provisioned_only_once_every_agency_it_knows_is_provisioned(
    kafka_admin: KafkaAccess, access_manager: Any, infrastructure: Any
) -> None:
    # `panjereh up` trusts this flag to say that the reference register's agencies can work.
    agencies = [AgencySystem(f"pv{n}-{uuid.uuid4().hex[:8]}") for n in range(3)]
    await announce(kafka_admin, *((agency.recorded(), agency.code) for agency in agencies))
    codes = {agency.code for agency in agencies}
    await polling.eventually(lambda: codes <= access_manager.agencies.keys(), timeout=60)
    await polling.eventually(lambda: access_manager.provisioned, timeout=90)

    topics = await topics_on(kafka_admin)
    for code in codes:
        assert {channel(family, code) for family in PER_AGENCY} <= topics, code
        assert infrastructure.credentials_file(agency_principal(code)).exists(), code


async def test_agencies_recorded_together_get_every_channel_and_acl_in_slices(
    kafka_admin: KafkaAccess,
    agency_kafka: Callable[[str], Awaitable[KafkaAccess]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A whole register at once is more than a controller takes in one operation, so the
    # manager creates topics and ACLs in slices; small slices here, so that three agencies
    # need several of each, and a slice left out would leave an agency without it.
    monkeypatch.setattr(infra.platform.provision, "TOPICS_PER_CREATE", 4)
    monkeypatch.setattr(infra.platform.access, "ACLS_PER_REQUEST", 3)
    agencies = [AgencySystem(f"sl{n}-{uuid.uuid4().hex[:8]}") for n in range(3)]
    await announce(kafka_admin, *((agency.recorded(), agency.code) for agency in agencies))
    for agency in agencies:
        own = await agency_kafka(agency.code)
        assert await can_write(own, channel(Topic.AGENCY_REQUESTS, agency.code)), agency.code
        assert await can_write(own, channel(Topic.AGENCY_DELIVERIES, agency.code)), agency.code

    topics = await topics_on(kafka_admin)
    for agency in agencies:
        assert {channel(family, agency.code) for family in PER_AGENCY} <= topics, agency.code


async def test_the_manager_announces_an_agency_once_its_channel_is_open(
    kafka_admin: KafkaAccess, access_manager: Any, infrastructure: Any
) -> None:
    # The services read every agency's channel by pattern and look for new ones when
    # told: an announcement must come, and only once the channel can be used.
    agency = AgencySystem(f"an-{uuid.uuid4().hex[:8]}")
    await announce(kafka_admin, (agency.recorded(), agency.code))

    def announced(records: list[Any]) -> bool:
        return any(agency.code in opened.agencies for opened in announcements(records))

    records = await read_all(kafka_admin, Topic.PLATFORM_CHANNELS, until=announced, timeout=90)
    assert announced(records), "the agency's channels were never announced"
    # What the manager had done before announcing is there as soon as the announcement is.
    assert infrastructure.credentials_file(agency_principal(agency.code)).exists()
    topics = await topics_on(kafka_admin)
    assert {channel(family, agency.code) for family in PER_AGENCY} <= topics


def announcements(records: list[Any]) -> list[ChannelsOpened]:
    """The announcements among `records` (other tests put poison there too)."""
    found = []
    for record in records:
        with contextlib.suppress(UndecodableEvent):
            payload = decode(record.value, record.topic).payload
            if isinstance(payload, ChannelsOpened):
                found.append(payload)
    return found


async def test_init_reads_every_agency_the_catalog_recorded(kafka_admin: KafkaAccess) -> None:
    # `init` gives the agencies already recorded their channels, users and ACLs again.
    agencies = [AgencySystem(f"ra{n}-{uuid.uuid4().hex[:8]}") for n in range(2)]
    inactive = agencies[1].recorded().model_copy(update={"active": False, "revision": 2})
    await announce(
        kafka_admin,
        *((agency.recorded(), agency.code) for agency in agencies),
        (inactive, agencies[1].code),
    )
    read = await read_agencies(kafka_admin)
    assert read[agencies[0].code] is True
    assert read[agencies[1].code] is False


async def test_init_gives_an_older_channel_the_partitions_its_family_has_now(
    kafka_admin: KafkaAccess,
) -> None:
    # A channel made when its family had one partition gets the declared count, and keeps
    # its records; a compacted topic is never grown (its keys' latest values would move).
    from aiokafka.admin import NewTopic

    code = f"gr-{uuid.uuid4().hex[:8]}"
    outcomes = channel(Topic.AGENCY_OUTCOMES, code)
    declared = SPECS[Topic.AGENCY_OUTCOMES].partitions
    assert declared > 1
    log_topic = f"test.compacted-{uuid.uuid4().hex[:8]}"
    compacted = SPECS[Topic.AGENCY_OUTCOMES].model_copy(
        update={"name": log_topic, "partitions": 3, "cleanup_policy": "compact"}
    )
    provision = infra.platform.provision
    admin = AIOKafkaAdminClient(**kafka_admin.client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(outcomes, 1, 1), NewTopic(log_topic, 1, 1)])
        await provision.until_led(admin, [outcomes, log_topic], within=30)
        producer = AIOKafkaProducer(**kafka_admin.client_options())
        await producer.start()
        try:
            await producer.send_and_wait(outcomes, b"before", key=b"k", partition=0)
        finally:
            await producer.stop()

        report = provision.InitReport()
        await provision.ensure_topics(kafka_admin, report, agencies=[code])
        assert f"{outcomes} (1 -> {declared})" in report.topics_grown
        assert await provision.until_led(admin, [outcomes], within=30) == {outcomes: declared}
        assert [r.value for r in await read_all(kafka_admin, outcomes)] == [b"before"]
        again = provision.InitReport()
        await provision.ensure_topics(kafka_admin, again, agencies=[code])
        assert again.topics_grown == []

        # A compacted topic declared with more partitions keeps the one it has.
        kept = provision.InitReport()
        await provision._grow(admin, {log_topic: compacted}, {log_topic: 1}, kept)
        assert await provision.until_led(admin, [log_topic], within=30) == {log_topic: 1}
    finally:
        await admin.close()
    assert kept.topics_grown == []
    assert log_topic in kept.warnings[0]


async def test_an_agencys_requests_and_answers_carry_the_brokers_time_even_on_older_channels(
    kafka_admin: KafkaAccess,
) -> None:
    # The exchange judges deadlines by when the broker took a request or an answer: on
    # those channels a producer's own timestamp must not stand, on new channels or old.
    from aiokafka.admin import NewTopic

    code = f"ts-{uuid.uuid4().hex[:8]}"
    requests, answers = channel(Topic.AGENCY_REQUESTS, code), channel(Topic.AGENCY_ANSWERS, code)
    outcomes = channel(Topic.AGENCY_OUTCOMES, code)
    provision = infra.platform.provision
    admin = AIOKafkaAdminClient(**kafka_admin.client_options())
    await admin.start()
    try:
        # An answers channel made before this release, with producers' timestamps.
        await admin.create_topics([NewTopic(answers, 1, 1)])
        await provision.until_led(admin, [answers], within=30)
        report = provision.InitReport()
        await provision.ensure_topics(kafka_admin, report, agencies=[code])
        assert answers in report.topics_altered
        described = await provision._topic_configs(admin, (requests, answers, outcomes))
    finally:
        await admin.close()
    timestamps = {topic: described[topic]["message.timestamp.type"] for topic in described}
    assert timestamps == {
        requests: "LogAppendTime",
        answers: "LogAppendTime",
        outcomes: "CreateTime",
    }
