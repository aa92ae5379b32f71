"""Events too large for their topic, and numbers JSON cannot carry, on the real broker and
database: refused where they are made or read, never stuck in an outbox or a partition."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaError
from fastapi import APIRouter

from services.metrics.settings import MetricsSettings
from shared.db import Pool
from shared.envelope import Envelope
from shared.events.platform import ServiceStarted
from shared.kafka import EventConsumer, RetryPolicy, new_producer, partitions_of
from shared.kafka_access import KafkaAccess
from shared.outbox import OutboxRelay, enqueue
from shared.record_limits import EventTooLarge
from shared.runtime import RuntimeDep, create_app, dispatcher
from shared.topics import SPECS, Topic, dead_letter_of
from shared.unit_of_work import UnitOfWork, transaction
from tests.integration.kafka_helpers import header, read_all
from tests.polling import eventually

pytestmark = pytest.mark.integration

TOPIC = Topic.PLATFORM_LIFECYCLE
LIMIT = SPECS[TOPIC].max_record_bytes
FAST_RETRY = RetryPolicy(attempts=3, first_delay=0.05, max_delay=0.2)


def started(run: str, instance: str) -> Envelope[ServiceStarted]:
    payload = ServiceStarted(service=run, release="test", instance=instance)
    return Envelope.wrap(payload, source="tests", subject=run)


def oversized(run: str) -> Envelope[ServiceStarted]:
    return started(run, "x" * (LIMIT + 1))


async def outbox_ids(pool: Pool) -> set[uuid.UUID]:
    return {row["event_id"] for row in await pool.fetch("SELECT event_id FROM outbox")}


async def test_an_event_too_large_for_its_topic_is_refused_at_the_door_and_nothing_is_written(
    scratch_schema: tuple[str, Pool],
) -> None:
    _, pool = scratch_schema
    run = uuid.uuid4().hex

    async def fitting_then_oversized() -> None:
        async with pool.acquire() as connection, connection.transaction():
            await enqueue(connection, started(run, "fits"))
            await enqueue(connection, oversized(run))

    with pytest.raises(EventTooLarge, match=f"{TOPIC.value} takes at most {LIMIT}"):
        await fitting_then_oversized()
    assert await outbox_ids(pool) == set()


@pytest.mark.allows_error_logs
async def test_the_relay_parks_a_row_the_broker_would_refuse_and_publishes_the_rows_behind_it(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess
) -> None:
    schema, pool = scratch_schema
    run = uuid.uuid4().hex
    before, huge, after = started(run, "before"), oversized(run), started(run, "after")
    async with pool.acquire() as connection, connection.transaction():
        await enqueue(connection, before)
        # As an older release (or a larger limit) would have written it: past the door.
        await connection.execute(
            "INSERT INTO outbox (event_id, topic, key, value) VALUES ($1, $2, $3, $4)",
            huge.id,
            huge.destination,
            huge.key(),
            huge.to_bytes(),
        )
        await enqueue(connection, after)
    relay = OutboxRelay(pool, schema=schema, kafka=kafka_admin, relay_id=f"test-{run}")
    task = asyncio.create_task(relay.run())
    try:
        records = await read_all(
            kafka_admin,
            TOPIC,
            until=lambda rs: str(after.id) in {header(r, "event-id") for r in rs},
            timeout=30,
        )
    finally:
        await relay.stop()
        await asyncio.wait_for(task, 30)
    published = [header(r, "event-id") for r in records if r.key == run.encode()]
    assert published == [str(before.id), str(after.id)]
    parked = await pool.fetch("SELECT event_id, topic, reason, value FROM outbox_parked")
    assert [(row["event_id"], row["topic"]) for row in parked] == [(huge.id, TOPIC.value)]
    assert f"takes at most {LIMIT}" in parked[0]["reason"]
    assert parked[0]["value"] == huge.to_bytes()  # kept, for the platform team
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


async def test_a_route_whose_event_is_too_large_answers_413_and_publishes_nothing(
    credentials_file: Callable[[str], str], database_urls: Mapping[str, str]
) -> None:
    router = APIRouter()
    run = uuid.uuid4().hex

    @router.post("/announce")
    async def announce(size: int, runtime: RuntimeDep) -> dict[str, str]:
        async with transaction(runtime.pool, UnitOfWork) as work:
            await work.publish([started(run, "y" * size)])
        return {"announced": run}

    settings = MetricsSettings(
        kafka_credentials_file=credentials_file("metrics"), database_url=database_urls["metrics"]
    )
    app = create_app(settings, title="announcer", routers=[router])
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://service") as client:
            assert (await client.post("/announce", params={"size": 10})).status_code == 200
            refused = await client.post("/announce", params={"size": LIMIT})
        count = await app.state.runtime.pool.fetchval(
            "SELECT count(*) FROM outbox WHERE position($1::bytea IN value) > 0", run.encode()
        )
    assert refused.status_code == 413
    assert refused.headers["content-type"] == "application/problem+json"
    problem = refused.json()
    assert problem["code"] == "event_too_large"
    assert set(problem["messages"]) == {"fa", "en"}
    assert f"takes at most {LIMIT}" in problem["detail"]
    assert count == 1


@asynccontextmanager
async def consuming(
    kafka: KafkaAccess, pool: Pool, group: str, run: str, handled: list[str]
) -> AsyncIterator[EventConsumer]:
    """`group` consuming the topic; each of this run's events causes an event of the size
    its `instance` names (the way a handler's events grow with what it consumed)."""

    async def cause(envelope: Envelope[Any], connection: Any) -> None:
        payload: ServiceStarted = envelope.payload
        if payload.service != run or not payload.instance.startswith("cause:"):
            return
        size = int(payload.instance.removeprefix("cause:"))
        await UnitOfWork(connection).publish([started(payload.service, "z" * size)])
        handled.append(payload.instance)

    consumer = EventConsumer(
        group=group,
        topics=[TOPIC],
        handler=dispatcher(pool, group, {ServiceStarted: [cause]}),
        kafka=kafka,
        retry=FAST_RETRY,
    )
    task = asyncio.create_task(consumer.run())
    try:
        yield consumer
    finally:
        await consumer.stop()
        await asyncio.wait_for(task, timeout=30)


async def dead_letters(kafka: KafkaAccess, group: str, run: str, count: int) -> list[Any]:
    def mine(record: Any) -> bool:
        return header(record, "dlq-consumer") == group and record.key == run.encode()

    records = await read_all(
        kafka, dead_letter_of(TOPIC), until=lambda rs: sum(map(mine, rs)) >= count
    )
    return [r for r in records if mine(r)]


async def test_a_consumed_event_causing_one_too_large_is_dead_lettered_and_the_next_handled(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess
) -> None:
    _, pool = scratch_schema
    run, group = uuid.uuid4().hex, f"test-{uuid.uuid4().hex}"
    too_large, fine = started(run, f"cause:{LIMIT}"), started(run, "cause:10")
    producer = new_producer(kafka_admin, client_id="tests")
    await producer.start()
    try:
        for envelope in (too_large, fine):
            await producer.send_and_wait(TOPIC.value, envelope.to_bytes(), key=envelope.key())
    finally:
        await producer.stop()
    handled: list[str] = []
    async with consuming(kafka_admin, pool, group, run, handled):
        await eventually(lambda: handled == ["cause:10"], timeout=30)
        refused = await dead_letters(kafka_admin, group, run, 1)
    assert len(refused) == 1
    assert refused[0].value == too_large.to_bytes()
    reason = header(refused[0], "dlq-reason") or ""
    assert "event_too_large" in reason or "takes at most" in reason
    assert await pool.fetchval("SELECT count(*) FROM outbox") == 1


async def test_a_record_with_a_number_json_cannot_carry_is_dead_lettered_with_the_reason(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess
) -> None:
    _, pool = scratch_schema
    run, group = uuid.uuid4().hex, f"test-{uuid.uuid4().hex}"
    # A record of a type whose payload is free-form would decode; this one has an extra
    # number too large to be exact, which is refused before the event is even validated.
    poisoned = started(run, "cause:10").to_bytes().replace(b'"source"', b'"n":1e999,"source"')
    good = started(run, "cause:20")
    producer = new_producer(kafka_admin, client_id="tests")
    await producer.start()
    try:
        await producer.send_and_wait(TOPIC.value, poisoned, key=run.encode())
        await producer.send_and_wait(TOPIC.value, good.to_bytes(), key=good.key())
    finally:
        await producer.stop()
    handled: list[str] = []
    async with consuming(kafka_admin, pool, group, run, handled):
        await eventually(lambda: handled == ["cause:20"], timeout=30)
        refused = await dead_letters(kafka_admin, group, run, 1)
    assert header(refused[0], "dlq-reason") == (
        "the value is not exact JSON: the number 1e999 is beyond what a double holds"
    )


@pytest.mark.allows_error_logs
async def test_a_row_the_broker_itself_refuses_as_too_large_is_parked_and_the_relay_goes_on(
    scratch_schema: tuple[str, Pool], kafka_admin: KafkaAccess
) -> None:
    """A broker whose limit for a topic is lower than the register says (changed by hand,
    say): the row passes the relay's own check, the broker refuses it, and only it waits."""
    schema, pool = scratch_schema
    run = uuid.uuid4().hex
    narrow = f"test.narrow-{run}"
    admin = AIOKafkaAdminClient(**kafka_admin.client_options())
    await admin.start()
    try:
        await admin.create_topics(
            [NewTopic(narrow, 1, 1, topic_configs={"max.message.bytes": "2000"})]
        )
    finally:
        await admin.close()
    await eventually_writable(kafka_admin, narrow)
    before, refused, after = started(run, "before"), started(run, "r" * 5000), started(run, "after")
    async with pool.acquire() as connection, connection.transaction():
        await enqueue(connection, before)
        await connection.execute(
            "INSERT INTO outbox (event_id, topic, key, value) VALUES ($1, $2, $3, $4)",
            refused.id,
            narrow,
            refused.key(),
            refused.to_bytes(),
        )
        await enqueue(connection, after)
    relay = OutboxRelay(pool, schema=schema, kafka=kafka_admin, relay_id=f"test-{run}")
    task = asyncio.create_task(relay.run())
    try:
        records = await read_all(
            kafka_admin,
            TOPIC,
            until=lambda rs: str(after.id) in {header(r, "event-id") for r in rs},
            timeout=60,
        )
        await eventually(lambda: relay.published >= 2, timeout=30)
    finally:
        await relay.stop()
        await asyncio.wait_for(task, 30)
    published = [header(r, "event-id") for r in records if r.key == run.encode()]
    assert published == [str(before.id), str(after.id)]
    parked = await pool.fetch("SELECT event_id, reason FROM outbox_parked")
    assert [row["event_id"] for row in parked] == [refused.id]
    assert "MessageSizeTooLarge" in parked[0]["reason"]
    assert await pool.fetchval("SELECT count(*) FROM outbox WHERE published_at IS NULL") == 0


async def eventually_writable(kafka: KafkaAccess, topic: str) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while True:
        try:
            if await partitions_of(kafka, topic):
                return
        except KafkaError:
            pass
        assert loop.time() < deadline, f"{topic} never became writable"
        await asyncio.sleep(0.2)
