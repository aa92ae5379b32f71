"""The agency package's channel reader on the real broker: through a rebalance, a second
instance of an agency's system joining while the first still handles a batch neither ends
the first nor loses the batch; a refused record that comes again is not dead-lettered
again; and a reader that stops leaves every batch it handled committed."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from panjereh_agency.channel import ChannelReader
from panjereh_agency.exchange_keys import ExchangeKeys

from shared.envelope import Envelope, Event
from shared.events.exchange import DataRequestCompleted
from shared.kafka import event_headers, new_producer, partitions_of
from shared.kafka_access import KafkaAccess
from shared.topics import Topic, channel, dead_letter_of
from tests.integration.exchange.helpers import AgencySystem, ExchangeStandIn, announce
from tests.integration.kafka_helpers import read_all
from tests.polling import eventually

pytestmark = pytest.mark.integration


def outcome(exchange: ExchangeStandIn, agency: str) -> DataRequestCompleted:
    completed = DataRequestCompleted(
        transaction_id=uuid.uuid4(),
        consumer=agency,
        provider="civil-registration",
        data_service="civil-registration.vital-status",
        outcome="answered",
        payload={"alive": True},
        reason=None,
        signature="-",
    )
    signed = exchange.signed(completed)
    assert isinstance(signed, DataRequestCompleted)
    return signed


async def send_to(producer: AIOKafkaProducer, topic: str, partition: int, event: Event) -> None:
    envelope = Envelope.wrap(event, source="exchange", subject=str(uuid.uuid4()))
    await producer.send_and_wait(
        topic, envelope.to_bytes(), partition=partition, headers=event_headers(envelope)
    )


async def outcomes_channel(
    prefix: str, kafka_admin: KafkaAccess, agency_kafka: Callable[[str], Awaitable[KafkaAccess]]
) -> tuple[AgencySystem, KafkaAccess, str]:
    """A newly recorded agency, its own access once issued, and its outcomes topic."""
    agency = AgencySystem(f"{prefix}-{uuid.uuid4().hex[:8]}")
    await announce(kafka_admin, (agency.recorded(), agency.code))
    access = await agency_kafka(agency.code)
    return agency, access, channel(Topic.AGENCY_OUTCOMES, agency.code)


class Taker:
    """An agency's code: records what it is given; `hold` makes it wait until released."""

    def __init__(self, *, hold: bool = False) -> None:
        self.taken: list[Event] = []
        self.released = asyncio.Event()
        if not hold:
            self.released.set()

    async def __call__(self, event: Event) -> None:
        self.taken.append(event)
        await self.released.wait()


async def test_a_rebalance_while_a_batch_is_handled_neither_ends_the_reader_nor_loses_the_batch(
    kafka_admin: KafkaAccess, agency_kafka: Callable[[str], Awaitable[KafkaAccess]]
) -> None:
    agency, access, topic = await outcomes_channel("rb", kafka_admin, agency_kafka)
    assert await partitions_of(kafka_admin, topic) == {0, 1}
    exchange = ExchangeStandIn()
    keys = ExchangeKeys(keys=exchange.keys())
    producer = new_producer(kafka_admin, client_id="agency-channel-tests")
    await producer.start()
    first_taker, second_taker = Taker(hold=True), Taker()
    first = ChannelReader(access, agency.code, Topic.AGENCY_OUTCOMES, "outcomes-main", keys)
    second = ChannelReader(access, agency.code, Topic.AGENCY_OUTCOMES, "outcomes-main", keys)
    tasks: list[asyncio.Task[None]] = []
    try:
        # Waiting on both partitions before the first instance starts: its first poll
        # takes them both, as one batch.
        before = [outcome(exchange, agency.code) for _ in range(2)]
        for partition, event in enumerate(before):
            await send_to(producer, topic, partition, event)
        tasks.append(asyncio.create_task(first.run(first_taker)))
        await eventually(lambda: len(first_taker.taken) == 2, timeout=60)

        # A second instance joins the group while the first still handles that batch:
        # one partition moves to it, and the first cannot commit that partition's record.
        tasks.append(asyncio.create_task(second.run(second_taker)))
        await asyncio.wait_for(second.ready.wait(), 60)
        first_taker.released.set()
        await eventually(lambda: first.commits_refused == 1, timeout=30)

        # The moved partition's record comes again, to the instance that holds it now.
        await eventually(lambda: len(second_taker.taken) == 1, timeout=30)
        assert second_taker.taken[0] in before
        # Both go on reading: a record on each partition reaches one of them.
        after = [outcome(exchange, agency.code) for _ in range(2)]
        for partition, event in enumerate(after):
            await send_to(producer, topic, partition, event)
        await eventually(
            lambda: all(e in first_taker.taken + second_taker.taken for e in after),
            timeout=30,
        )
        assert not any(task.done() for task in tasks)
        assert first.commits_refused == 1
        assert first.refused == second.refused == 0
    finally:
        await first.stop()
        await second.stop()
        await asyncio.gather(*tasks)
        await producer.stop()


async def test_a_record_refused_again_after_a_rebalance_is_dead_lettered_once(
    kafka_admin: KafkaAccess, agency_kafka: Callable[[str], Awaitable[KafkaAccess]]
) -> None:
    agency, access, topic = await outcomes_channel("rl", kafka_admin, agency_kafka)
    exchange = ExchangeStandIn()
    reader = ChannelReader(
        access,
        agency.code,
        Topic.AGENCY_OUTCOMES,
        "outcomes-main",
        ExchangeKeys(keys=exchange.keys()),
    )
    taker = Taker()
    producer = new_producer(kafka_admin, client_id="agency-channel-tests")
    await producer.start()
    task = asyncio.create_task(reader.run(taker))
    try:
        # Not signed by the exchange: refused. Then a good one behind it.
        forged = outcome(ExchangeStandIn(), agency.code)
        good = outcome(exchange, agency.code)
        await send_to(producer, topic, 0, forged)
        await send_to(producer, topic, 0, good)
        await eventually(lambda: taker.taken == [good], timeout=60)
        # What a rebalance does: the partition back at an earlier offset, so both come
        # again; the forged one is refused again.
        consumer: Any = reader._consumer
        for tp in consumer.assignment():
            consumer.seek(tp, 0)
        await eventually(lambda: taker.taken == [good, good], timeout=60)
    finally:
        await reader.stop()
        await task
        await producer.stop()

    def letter_of_forged(record: Any) -> bool:
        return record.value is not None and str(forged.transaction_id).encode() in record.value

    letters = await read_all(
        kafka_admin, dead_letter_of(topic), until=lambda rs: any(map(letter_of_forged, rs))
    )
    assert len([record for record in letters if letter_of_forged(record)]) == 1
    assert reader.refused == 1


async def test_a_reader_that_stops_has_committed_every_batch_it_handled(
    kafka_admin: KafkaAccess, agency_kafka: Callable[[str], Awaitable[KafkaAccess]]
) -> None:
    # A batch's commit runs while the next batch is read: stopping must still wait for it,
    # or the next instance of the agency's system gets the last batch again.
    agency, access, topic = await outcomes_channel("cm", kafka_admin, agency_kafka)
    exchange = ExchangeStandIn()
    keys = ExchangeKeys(keys=exchange.keys())
    producer = new_producer(kafka_admin, client_id="agency-channel-tests")
    await producer.start()
    try:
        handled = [outcome(exchange, agency.code) for _ in range(6)]
        first_taker = Taker()
        first = ChannelReader(access, agency.code, Topic.AGENCY_OUTCOMES, "outcomes-main", keys)

        async def take_then_stop_at_the_last(event: Event) -> None:
            # Stopping while the last batch is handled: the reader leaves right after it,
            # its commit still in flight.
            await first_taker(event)
            if event == handled[-1]:
                await first.stop()

        task = asyncio.create_task(first.run(take_then_stop_at_the_last))
        await asyncio.wait_for(first.ready.wait(), 60)
        for number, event in enumerate(handled):
            # One at a time, so they come in several batches.
            await send_to(producer, topic, number % 2, event)
            await eventually(lambda: event in first_taker.taken, timeout=30)  # noqa: B023
        await asyncio.wait_for(task, 30)
        assert first_taker.taken == handled

        second_taker = Taker()
        second = ChannelReader(access, agency.code, Topic.AGENCY_OUTCOMES, "outcomes-main", keys)
        task = asyncio.create_task(second.run(second_taker))
        later = [outcome(exchange, agency.code) for _ in range(2)]
        for partition, event in enumerate(later):
            await send_to(producer, topic, partition, event)
        # Anything left uncommitted would come before these, on its partition.
        await eventually(lambda: len(second_taker.taken) >= 2, timeout=60)
        await second.stop()
        await task
        assert len(second_taker.taken) == 2
        assert all(event in second_taker.taken for event in later)
        assert first.commits_refused == second.commits_refused == 0
    finally:
        await producer.stop()
