"""Fetch sessions on the real broker: every record once, in order, while the fetches name
only the partitions that changed."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter, defaultdict
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from infra.platform.provision import until_led
from shared.fetch_sessions import (
    SessionFetcher,
    SessionFetchRequest,
    Watch,
    use_fetch_sessions,
)
from shared.kafka_access import KafkaAccess

pytestmark = pytest.mark.integration

#: As many partitions as a few dozen agencies' channels: most idle at any moment.
PARTITIONS = 48


async def new_topic(kafka_admin: KafkaAccess, partitions: int) -> str:
    topic = f"test.sessions-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(**kafka_admin.client_options())
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
        await until_led(admin, [topic], within=30)
    finally:
        await admin.close()
    return topic


async def read_until(
    consumer: AIOKafkaConsumer, got: list[tuple[int, str]], wanted: set[str], within: float = 20
) -> None:
    """Read into `got` (partition, value) until every value of `wanted` is in it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not wanted <= {value for _, value in got}:
        assert loop.time() < deadline, f"never read {sorted(wanted - {v for _, v in got})}"
        batches = await consumer.getmany(timeout_ms=200)
        for tp, records in batches.items():
            got.extend((tp.partition, record.value.decode()) for record in records)


async def test_a_session_consumer_reads_every_record_once_and_names_only_what_changed(
    kafka_admin: KafkaAccess, monkeypatch: pytest.MonkeyPatch
) -> None:
    named: list[int] = []  # how many partitions each fetch named on the wire
    build = SessionFetchRequest.build

    def naming(request: SessionFetchRequest, struct_class: Any) -> Any:
        struct = build(request, struct_class)
        named.append(sum(len(partitions) for _, partitions in struct.topics))
        return struct

    monkeypatch.setattr(SessionFetchRequest, "build", naming)
    topic = await new_topic(kafka_admin, PARTITIONS)
    producer = AIOKafkaProducer(**kafka_admin.client_options())
    consumer = AIOKafkaConsumer(
        **kafka_admin.client_options(),
        enable_auto_commit=False,
        isolation_level="read_committed",
        auto_offset_reset="earliest",
    )
    tps = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    sent: dict[int, list[str]] = defaultdict(list)
    got: list[tuple[int, str]] = []

    async def send(partition: int, value: str) -> None:
        await producer.send_and_wait(topic, value.encode(), partition=partition)
        sent[partition].append(value)

    await producer.start()
    consumer.assign(tps)
    await consumer.start()
    for tp in tps:  # a new topic: no need to ask its partitions where they begin
        consumer.seek(tp, 0)
    try:
        await use_fetch_sessions(consumer)
        # Rounds of a few busy partitions among many idle ones.
        for round_ in range(6):
            values = set()
            for partition in {round_ % PARTITIONS, (7 * round_ + 3) % PARTITIONS, 40}:
                for n in range(3):
                    value = f"r{round_}-p{partition}-{n}"
                    await send(partition, value)
                    values.add(value)
            await read_until(consumer, got, values)

        # A paused partition is left out of the session, and comes back when resumed.
        paused = TopicPartition(topic, 5)
        consumer.pause(paused)
        await send(5, "while-paused")
        await send(6, "beside-paused")
        await read_until(consumer, got, {"beside-paused"})
        await asyncio.sleep(1)
        await read_until(consumer, got, set(), within=1)
        assert "while-paused" not in {value for _, value in got}
        consumer.resume(paused)
        await read_until(consumer, got, {"while-paused"})

        # A seek moves the session's offset too: the partition is read again from 0.
        consumer.seek(TopicPartition(topic, 40), 0)
        again: list[tuple[int, str]] = []
        await read_until(consumer, again, set(sent[40]))
    finally:
        await consumer.stop()
        await producer.stop()

    # Every record once, in its partition's order; the second read of partition 40 whole.
    assert Counter(value for _, value in got) == Counter(v for vs in sent.values() for v in vs)
    for partition, in_order in sent.items():
        assert [value for p, value in got if p == partition] == in_order, partition
    assert [value for p, value in again if p == 40] == sent[40]
    # The first fetch names every partition; once the session holds them, each fetch
    # names what changed: a partition read or left out, a few at a time.
    assert named[0] == PARTITIONS
    assert len(named) > 10
    assert max(named[2:]) < PARTITIONS // 4, named


async def test_quiet_partitions_are_watched_apart_and_a_record_on_one_is_read_at_once(
    kafka_admin: KafkaAccess, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Fetches wait up to 10 s for records: a record read much sooner than that was
    # answered for by a fetch the broker held, busy or watch, not by one sent after it.
    last_sent: dict[Any, set[int]] = {}  # each request's key: the partitions it last held
    plan = SessionFetcher._get_actions_per_node

    def recording(fetcher: SessionFetcher, assignment: Any) -> Any:
        actions = plan(fetcher, assignment)
        for key, request in actions[0]:
            last_sent[key] = {partition for _, partition in request.wanted}
        return actions

    monkeypatch.setattr(SessionFetcher, "_get_actions_per_node", recording)
    topic = await new_topic(kafka_admin, 24)
    producer = AIOKafkaProducer(**kafka_admin.client_options())
    consumer = AIOKafkaConsumer(
        **kafka_admin.client_options(),
        enable_auto_commit=False,
        isolation_level="read_committed",
        fetch_max_wait_ms=10_000,
    )
    tps = [TopicPartition(topic, p) for p in range(24)]
    got: list[tuple[int, str]] = []
    await producer.start()
    consumer.assign(tps)
    await consumer.start()
    for tp in tps:
        consumer.seek(tp, 0)
    try:
        await use_fetch_sessions(consumer, quiet_after_s=1.0, min_watched=4)
        fetcher: Any = consumer._fetcher
        assert isinstance(fetcher, SessionFetcher)
        for p in range(24):
            await producer.send_and_wait(topic, f"first-{p}".encode(), partition=p)
        await read_until(consumer, got, {f"first-{p}" for p in range(24)}, within=20)

        # Partition 0 stays busy while the others go quiet.
        loop = asyncio.get_running_loop()
        busy_until = loop.time() + 3
        n = 0
        while loop.time() < busy_until:
            await producer.send_and_wait(topic, f"busy-{n}".encode(), partition=0)
            await read_until(consumer, got, {f"busy-{n}"}, within=10)
            n += 1
        [node] = fetcher._sessions
        assert Watch(node) in fetcher._in_flight
        assert last_sent[Watch(node)] == set(range(1, 24))
        assert last_sent[node] == {0}

        # A record on a quiet partition: the watch the broker holds answers with it.
        await producer.send_and_wait(topic, b"on-a-quiet-one", partition=17)
        await read_until(consumer, got, {"on-a-quiet-one"}, within=4)
        assert loop.time() - fetcher._heard[TopicPartition(topic, 17)] < 4
    finally:
        await consumer.stop()  # after its fetches' wait: the broker answers them first
        await producer.stop()
    values = [value for _, value in got]
    assert len(values) == len(set(values)) == 24 + n + 1
