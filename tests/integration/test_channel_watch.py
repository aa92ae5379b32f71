"""A consumer that reads a family of channels by pattern finds a new agency's channel when
the access manager announces it on `platform.channels`, not at its next metadata refresh;
and a record there that is no announcement is dead-lettered without stopping the watch."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

import shared.kafka
from shared.envelope import Envelope, Event
from shared.events.platform import ChannelsOpened
from shared.kafka import EventConsumer, new_producer, publish
from shared.kafka_access import KafkaAccess
from shared.registry import example_envelopes, on_topic
from shared.topics import SPECS, Topic, channel, dead_letter_of
from tests.integration.kafka_helpers import header, read_all
from tests.polling import eventually

pytestmark = pytest.mark.integration

FAMILY = Topic.AGENCY_DELIVERIES
#: Longer than any test waits: only an announcement can make the consumer look sooner.
NEVER_MS = 30 * 60 * 1000


def delivery_of(agency: str) -> Event:
    """The family's documented event, on `agency`'s channel."""
    payload: Event = example_envelopes(on_topic(FAMILY)[0])[0].payload
    assert payload.agency_field is not None
    return payload.model_copy(update={payload.agency_field: agency})


async def open_channel(kafka: KafkaAccess, agency: str) -> None:
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        name = channel(FAMILY, agency)
        await admin.create_topics([NewTopic(name, SPECS[FAMILY].partitions, 1)])
    finally:
        await admin.close()


async def send(kafka: KafkaAccess, topic: str, value: bytes, key: bytes) -> None:
    producer = new_producer(kafka, client_id="channel-watch-tests")
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def send_events(kafka: KafkaAccess, *events: Event) -> None:
    producer = new_producer(kafka, client_id="channel-watch-tests")
    await producer.start()
    try:
        for event in events:
            await publish(producer, Envelope.wrap(event, source="tests", subject="tests"))
    finally:
        await producer.stop()


async def test_a_pattern_consumer_reads_a_new_channel_once_it_is_announced(
    kafka_admin: KafkaAccess, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shared.kafka, "METADATA_REFRESH_MS", NEVER_MS)
    run = uuid.uuid4().hex[:8]
    first, second = f"cw-{run}-a", f"cw-{run}-b"
    group = f"channel-watch-{run}"
    seen: list[str] = []

    async def handler(envelope: Envelope[Any]) -> None:
        seen.append(envelope.destination)

    await open_channel(kafka_admin, first)
    consumer = EventConsumer(group=group, topics=[FAMILY], handler=handler, kafka=kafka_admin)
    task = asyncio.create_task(consumer.run())
    try:
        # The consumer is reading: the channel it found when it started works.
        await send_events(kafka_admin, delivery_of(first))
        await eventually(lambda: channel(FAMILY, first) in seen, timeout=60)

        await open_channel(kafka_admin, second)
        await send_events(kafka_admin, delivery_of(second))
        poison = b'{"not": "an announcement"'
        await send(kafka_admin, Topic.PLATFORM_CHANNELS, poison, key=run.encode())
        await send_events(kafka_admin, ChannelsOpened(agencies=[second]))

        await eventually(lambda: channel(FAMILY, second) in seen, timeout=30)
    finally:
        await consumer.stop()
        await asyncio.wait_for(task, timeout=30)

    def refused(record: Any) -> bool:
        return header(record, "dlq-consumer") == group and record.value == poison

    letters = await read_all(
        kafka_admin, dead_letter_of(Topic.PLATFORM_CHANNELS), until=lambda rs: any(map(refused, rs))
    )
    (letter,) = [record for record in letters if refused(record)]
    assert header(letter, "dlq-reason"), "a dead letter without its reason"
