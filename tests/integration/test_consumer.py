"""The consumer on the real broker: bad records are dead-lettered, the rest goes on.

Each test consumes with a consumer group of its own from the start of the topic, so it
also sees what earlier tests left there; assertions look only at this test's records.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.partitioner import DefaultPartitioner
from opentelemetry import context as otel_context

from shared.db import Pool
from shared.envelope import Envelope
from shared.events.platform import ServiceStarted
from shared.kafka import (
    BatchHandler,
    EventConsumer,
    Rejected,
    RetryPolicy,
    Transient,
    new_producer,
    partitions_of,
    publish,
)
from shared.kafka_access import KafkaAccess
from shared.runtime import dispatcher
from shared.topics import Topic, dead_letter_of
from tests.integration.kafka_helpers import header, read_all
from tests.polling import eventually

pytestmark = pytest.mark.integration

TOPIC = Topic.PLATFORM_LIFECYCLE
DLQ = dead_letter_of(TOPIC)
FAST_RETRY = RetryPolicy(attempts=3, first_delay=0.05, max_delay=0.2)


def started(run: str, label: str) -> Envelope[ServiceStarted]:
    payload = ServiceStarted(service=run, release="test", instance=label)
    return Envelope.wrap(payload, source="tests", subject=run)


@asynccontextmanager
async def producer(kafka: KafkaAccess) -> AsyncIterator[AIOKafkaProducer]:
    p = new_producer(kafka, client_id="tests")
    await p.start()
    try:
        yield p
    finally:
        await p.stop()


async def publish_all(kafka: KafkaAccess, envelopes: Sequence[Envelope[Any]]) -> None:
    """Publish `envelopes` on the topic, in order."""
    async with producer(kafka) as p:
        for envelope in envelopes:
            await publish(p, envelope)


@asynccontextmanager
async def consuming(
    kafka: KafkaAccess,
    handler: Callable[[Envelope[Any]], Awaitable[None]],
    group: str,
    *,
    batch: BatchHandler | None = None,
    retry: RetryPolicy | None = FAST_RETRY,
) -> AsyncIterator[EventConsumer]:
    """`group` consuming the topic with `handler` (and `batch`, if given) until the block ends."""
    consumer = EventConsumer(
        group=group, topics=[TOPIC], handler=handler, kafka=kafka, retry=retry, batch=batch
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        await consumer.stop()
        await asyncio.wait_for(task, timeout=30)


async def dead_letters_of(kafka: KafkaAccess, group: str, run: str, count: int) -> list[Any]:
    """What `group` dead-lettered of this test's records (keyed by `run`)."""

    def mine(record: Any) -> bool:
        return header(record, "dlq-consumer") == group and record.key == run.encode()

    records = await read_all(kafka, DLQ, until=lambda rs: sum(map(mine, rs)) >= count)
    return [r for r in records if mine(r)]


def refusing(run: str, handled: list[str]) -> Callable[[Envelope[Any]], Awaitable[None]]:
    """A handler of this test's events: it refuses the one labelled "refused" and notes
    the label of each other in `handled`."""

    async def handler(envelope: Envelope[Any]) -> None:
        if envelope.subject != run:
            return
        if envelope.payload.instance == "refused":
            raise Rejected("agency is not in the register")
        handled.append(envelope.payload.instance)

    return handler


async def test_malformed_events_go_to_the_dead_letter_topic_and_the_next_good_one_is_handled(
    kafka_admin: KafkaAccess,
) -> None:
    run, group = uuid.uuid4().hex, f"test-{uuid.uuid4().hex}"
    garbage = f"not json at all {run}".encode()
    invalid = json.loads(started(run, "bad").to_bytes())
    invalid["payload"]["release"] = 42  # a number where a string belongs
    invalid_bytes = json.dumps(invalid).encode()
    good = started(run, "good")
    async with producer(kafka_admin) as p:
        await p.send_and_wait(TOPIC.value, garbage, key=run.encode())
        await p.send_and_wait(TOPIC.value, invalid_bytes, key=run.encode())
        await publish(p, good)

    handled: list[Envelope[Any]] = []

    async def handler(envelope: Envelope[Any]) -> None:
        if envelope.subject == run:
            handled.append(envelope)

    async with consuming(kafka_admin, handler, group):
        await eventually(lambda: len(handled) == 1)

    assert handled[0].id == good.id
    mine = await dead_letters_of(kafka_admin, group, run, 2)
    assert [r.value for r in mine] == [garbage, invalid_bytes]
    assert "not JSON" in (header(mine[0], "dlq-reason") or "")
    assert "payload.release" in (header(mine[1], "dlq-reason") or "")
    assert {header(r, "dlq-topic") for r in mine} == {TOPIC.value}
    assert all(header(r, "dlq-offset") is not None for r in mine)


async def test_an_event_the_handler_rejects_is_dead_lettered_with_its_reason(
    kafka_admin: KafkaAccess,
) -> None:
    run, group = uuid.uuid4().hex, f"test-{uuid.uuid4().hex}"
    refused, accepted = started(run, "refused"), started(run, "accepted")
    await publish_all(kafka_admin, [refused, accepted])
    handled: list[str] = []
    handler = refusing(run, handled)

    async with consuming(kafka_admin, handler, group):
        await eventually(lambda: handled == ["accepted"])
    [dead] = await dead_letters_of(kafka_admin, group, run, 1)
    assert header(dead, "dlq-reason") == "agency is not in the register"
    assert header(dead, "event-id") == str(refused.id)


async def test_a_refused_record_delivered_again_is_dead_lettered_once(
    kafka_admin: KafkaAccess,
) -> None:
    run, group = uuid.uuid4().hex, f"test-{uuid.uuid4().hex}"
    await publish_all(kafka_admin, [started(run, "refused"), started(run, "accepted")])
    handled: list[str] = []
    handler = refusing(run, handled)

    async with consuming(kafka_admin, handler, group) as consumer:
        await eventually(lambda: handled == ["accepted"])
        # What a rebalance does: every partition back at an earlier offset, so both
        # records come again; the refused one is refused again.
        inner: Any = consumer._consumer
        for tp in inner.assignment():
            inner.seek(tp, 0)
        await eventually(lambda: handled == ["accepted", "accepted"], timeout=60)
    [dead] = await dead_letters_of(kafka_admin, group, run, 1)
    assert header(dead, "dlq-reason") == "agency is not in the register"


async def test_a_transient_failure_is_retried_until_it_passes(kafka_admin: KafkaAccess) -> None:
    run, group = uuid.uuid4().hex, f"test-{uuid.uuid4().hex}"
    await publish_all(kafka_admin, [started(run, "flaky")])
    attempts: list[int] = []

    async def handler(envelope: Envelope[Any]) -> None:
        if envelope.subject != run:
            return
        attempts.append(1)
        if len(attempts) < 6:  # more failures than the policy allows for a non-transient error
            raise Transient("the database is restarting")

    async with consuming(kafka_admin, handler, group) as consumer:
        await eventually(lambda: consumer.handled >= 1 and len(attempts) == 6)
    assert len(attempts) == 6
    assert await dead_letters_of(kafka_admin, group, run, 0) == []


async def test_a_failing_handler_is_dead_lettered_after_its_retries(
    kafka_admin: KafkaAccess,
) -> None:
    run, group = uuid.uuid4().hex, f"test-{uuid.uuid4().hex}"
    await publish_all(kafka_admin, [started(run, "buggy")])
    attempts: list[int] = []

    async def handler(envelope: Envelope[Any]) -> None:
        if envelope.subject == run:
            attempts.append(1)
            raise KeyError("a bug")

    async with consuming(kafka_admin, handler, group):
        await eventually(lambda: len(attempts) == 3)
    [dead] = await dead_letters_of(kafka_admin, group, run, 1)
    assert header(dead, "dlq-reason") == "handler failed 3 times: KeyError('a bug')"


async def test_a_redelivered_event_changes_nothing(
    kafka_admin: KafkaAccess, scratch_schema: tuple[str, Pool]
) -> None:
    _, pool = scratch_schema
    await pool.execute("CREATE TABLE starts (service text PRIMARY KEY, count int NOT NULL)")
    run, group = uuid.uuid4().hex, f"test-{uuid.uuid4().hex}"
    once, last = started(run, "once"), started(run, "last")
    # The same event, delivered three times.
    await publish_all(kafka_admin, [once, once, once, last])

    async def count_start(envelope: Envelope[Any], connection: Any) -> None:
        if envelope.subject == run:
            await connection.execute(
                "INSERT INTO starts VALUES ($1, 1)"
                " ON CONFLICT (service) DO UPDATE SET count = starts.count + 1",
                envelope.payload.service,
            )

    dispatch = dispatcher(pool, group, {ServiceStarted: [count_start]})
    done: set[uuid.UUID] = set()

    async def handler(envelope: Envelope[Any]) -> None:
        await dispatch(envelope)
        done.add(envelope.id)

    async with consuming(kafka_admin, handler, group):
        await eventually(lambda: last.id in done)
    # Three deliveries of one event and one of another: two starts, not four.
    assert await pool.fetchval("SELECT count FROM starts WHERE service = $1", run) == 2


@pytest.mark.allows_error_logs  # aiokafka logs each refused connection as an error
async def test_a_consumer_without_a_broker_waits_for_one_instead_of_dying(
    kafka_admin: KafkaAccess,
) -> None:
    async def handler(envelope: Envelope[Any]) -> None:
        raise AssertionError("nothing can arrive without a broker")

    consumer = EventConsumer(
        group=f"test-{uuid.uuid4().hex}",
        topics=[TOPIC],
        handler=handler,
        # The discard port: nothing listens.
        kafka=KafkaAccess("127.0.0.1:9", "nobody", "nothing", ca_file=kafka_admin.ca_file),
        retry=RetryPolicy(first_delay=0.05, max_delay=0.1),
    )
    task = asyncio.create_task(consumer.run())
    await asyncio.sleep(1.0)
    assert not task.done(), "the consumer gave up"
    await consumer.stop()
    await asyncio.wait_for(task, timeout=10)


async def test_a_batch_handler_refuses_single_events_and_the_rest_is_handled_together(
    kafka_admin: KafkaAccess,
) -> None:
    run, group = uuid.uuid4().hex, f"test-{uuid.uuid4().hex}"
    events = [started(run, label) for label in ("a", "refused", "b", "c")]
    await publish_all(kafka_admin, events)
    taken: list[str] = []

    async def batch(
        envelopes: Sequence[Envelope[Any]], _: Sequence[otel_context.Context]
    ) -> dict[uuid.UUID, str]:
        mine = [e for e in envelopes if e.subject == run]
        refused = {e.id: "not in the register" for e in mine if e.payload.instance == "refused"}
        taken.extend(e.payload.instance for e in mine if e.id not in refused)
        return refused

    async def one_by_one(envelope: Envelope[Any]) -> None:
        raise AssertionError("a batch that succeeds is never taken apart")

    async with consuming(kafka_admin, one_by_one, group, batch=batch, retry=None):
        await eventually(lambda: taken == ["a", "b", "c"])
    [dead] = await dead_letters_of(kafka_admin, group, run, 1)
    assert header(dead, "dlq-reason") == "not in the register"
    assert header(dead, "event-id") == str(events[1].id)


async def test_a_failing_batch_is_taken_apart_so_one_bad_event_fails_alone(
    kafka_admin: KafkaAccess,
) -> None:
    run, group = uuid.uuid4().hex, f"test-{uuid.uuid4().hex}"
    events = [started(run, label) for label in ("a", "poison", "b")]
    await publish_all(kafka_admin, events)
    handled: list[str] = []

    async def batch(
        envelopes: Sequence[Envelope[Any]], _: Sequence[otel_context.Context]
    ) -> dict[uuid.UUID, str]:
        if any(e.subject == run and e.payload.instance == "poison" for e in envelopes):
            raise Rejected("somewhere in this batch is an event we refuse")
        return {}

    async def one_by_one(envelope: Envelope[Any]) -> None:
        if envelope.subject == run:
            if envelope.payload.instance == "poison":
                raise Rejected("poison")
            handled.append(envelope.payload.instance)

    async with consuming(kafka_admin, one_by_one, group, batch=batch, retry=None):
        await eventually(lambda: handled == ["a", "b"])
    [dead] = await dead_letters_of(kafka_admin, group, run, 1)
    assert header(dead, "dlq-reason") == "poison"


async def test_a_poll_across_partitions_is_one_batch_and_one_commit(
    kafka_admin: KafkaAccess,
) -> None:
    run, group = uuid.uuid4().hex, f"test-{uuid.uuid4().hex}"
    partitions = sorted(await partitions_of(kafka_admin, TOPIC))
    tps = [TopicPartition(TOPIC, p) for p in partitions]
    # One subject (the record key) for each partition, so the poll spans all of them.
    subjects: dict[int, str] = {}
    for n in range(1000):
        subject = f"{run}-{n}"
        subjects.setdefault(DefaultPartitioner()(subject.encode(), partitions, partitions), subject)
    assert sorted(subjects) == partitions
    # The group starts where the topic ends now, so its first poll is this test's events.
    starter = AIOKafkaConsumer(**kafka_admin.client_options(), group_id=group)
    await starter.start()
    try:
        starter.assign(tps)
        await starter.commit(await starter.end_offsets(tps))
    finally:
        await starter.stop()
    await publish_all(kafka_admin, [started(subject, "a") for subject in subjects.values()])
    polls: list[set[str]] = []

    async def batch(
        envelopes: Sequence[Envelope[Any]], _: Sequence[otel_context.Context]
    ) -> dict[uuid.UUID, str]:
        polls.append({e.subject for e in envelopes})
        return {}

    async def one_by_one(envelope: Envelope[Any]) -> None:
        raise AssertionError("a batch that succeeds is never taken apart")

    async with consuming(kafka_admin, one_by_one, group, batch=batch, retry=None) as consumer:
        await eventually(lambda: set().union(*polls) == set(subjects.values()))
        assert polls == [set(subjects.values())]
        ends = await _end_offsets(kafka_admin, tps)
        await eventually(lambda: consumer.handled == len(subjects))
    assert await _committed(kafka_admin, group, tps) == ends


async def _end_offsets(kafka: KafkaAccess, tps: list[TopicPartition]) -> dict[TopicPartition, int]:
    reader = AIOKafkaConsumer(**kafka.client_options())
    await reader.start()
    try:
        ends: dict[TopicPartition, int] = await reader.end_offsets(tps)
        return ends
    finally:
        await reader.stop()


async def _committed(
    kafka: KafkaAccess, group: str, tps: list[TopicPartition]
) -> dict[TopicPartition, int | None]:
    reader = AIOKafkaConsumer(**kafka.client_options(), group_id=group)
    await reader.start()
    try:
        return {tp: await reader.committed(tp) for tp in tps}
    finally:
        await reader.stop()
