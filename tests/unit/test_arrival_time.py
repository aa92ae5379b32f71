"""When a record reached the broker, and how far the answers have been read: what the
exchange judges deadlines by, so that an answer read late (after a restart, a restore)
is on time if the broker took it in time. Pure logic: the consumer is a stand-in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

from aiokafka import TopicPartition
from aiokafka.errors import IllegalStateError
from aiokafka.structs import ConsumerRecord
from opentelemetry import trace

from services.exchange.handlers import answers_read_through, is_answers_channel
from shared.kafka import EventConsumer, arrived_at, delivery_context
from shared.kafka_access import KafkaAccess
from shared.topics import Topic, channel

TRACE = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
ANSWERS = TopicPartition(channel(Topic.AGENCY_ANSWERS, "civil-registration"), 0)
MORE_ANSWERS = TopicPartition(channel(Topic.AGENCY_ANSWERS, "tax"), 0)
REQUESTS = TopicPartition(channel(Topic.AGENCY_REQUESTS, "social-security"), 0)
THEN = datetime(2026, 12, 1, 8, 0, tzinfo=UTC)


def record(
    tp: TopicPartition, at: datetime, *, broker_time: bool = True
) -> ConsumerRecord[Any, Any]:
    return ConsumerRecord(
        tp.topic,
        tp.partition,
        0,
        int(at.timestamp() * 1000),
        1 if broker_time else 0,
        None,
        b"{}",
        None,
        0,
        2,
        [("traceparent", TRACE.encode())],
    )


def test_a_record_with_the_brokers_time_carries_it_and_its_trace() -> None:
    context = delivery_context(record(ANSWERS, THEN))
    assert arrived_at(context) == THEN
    span = trace.get_current_span(context).get_span_context()
    assert format(span.trace_id, "032x") == TRACE.split("-")[1]


def test_a_producers_own_timestamp_is_not_taken_for_an_arrival() -> None:
    assert arrived_at(delivery_context(record(ANSWERS, THEN, broker_time=False))) is None
    assert arrived_at() is None  # outside any record's handling


class StandIn:
    """What `read_through` asks of an aiokafka consumer."""

    def __init__(self, ends: dict[TopicPartition, int | None], at: dict[TopicPartition, int]):
        self.ends, self.at = ends, at

    def assignment(self) -> set[TopicPartition]:
        return set(self.ends)

    def highwater(self, tp: TopicPartition) -> int | None:
        assert tp in self.ends, "Partition is not assigned"  # as aiokafka's does
        return self.ends[tp]

    async def position(self, tp: TopicPartition) -> int:
        if tp not in self.ends:
            raise IllegalStateError(f"Partition {tp} is not assigned")
        return self.at[tp]


class RebalancedMidway(StandIn):
    """A consumer whose partitions all go to another member while a position is asked."""

    async def position(self, tp: TopicPartition) -> int:
        position = await super().position(tp)
        self.ends = {}
        return position


def member(ends: dict[TopicPartition, int | None], at: dict[TopicPartition, int]) -> EventConsumer:
    consumer = EventConsumer(
        group="exchange",
        topics=[Topic.AGENCY_REQUESTS, Topic.AGENCY_ANSWERS],
        handler=_ignore,
        kafka=KafkaAccess("127.0.0.1:1", "exchange", "never-used", "/nonexistent/ca.pem"),
    )
    consumer._consumer = StandIn(ends, at)  # type: ignore[assignment, unused-ignore]
    return consumer


async def _ignore(envelope: object) -> None:
    return None


async def test_answers_read_to_their_end_are_read_through_now() -> None:
    before = datetime.now(UTC)
    through = await member({ANSWERS: 10, REQUESTS: 50}, {ANSWERS: 10, REQUESTS: 3}).read_through(
        is_answers_channel
    )
    assert through is not None
    assert through >= before  # the requests' lag is not the answers'


async def test_answers_behind_are_read_through_the_last_one_handled() -> None:
    behind = member({ANSWERS: 10}, {ANSWERS: 4})
    assert await behind.read_through(is_answers_channel) is None  # nothing handled yet
    behind._handled({ANSWERS: [record(ANSWERS, THEN)]})
    assert await behind.read_through(is_answers_channel) == THEN
    behind._handling = True
    assert await behind.read_through(is_answers_channel) is None  # records in hand


async def test_a_partition_not_fetched_yet_or_a_consumer_between_sessions_tells_nothing() -> None:
    assert await member({ANSWERS: None}, {ANSWERS: 0}).read_through(is_answers_channel) is None
    idle = member({}, {})
    idle._consumer = None
    assert await idle.read_through(is_answers_channel) is None


async def test_partitions_taken_away_while_it_looks_tell_nothing_and_raise_nothing() -> None:
    rebalanced = member({}, {})
    ends: dict[TopicPartition, int | None] = {ANSWERS: 10, MORE_ANSWERS: 10}
    rebalanced._consumer = RebalancedMidway(ends, {ANSWERS: 10, MORE_ANSWERS: 10})  # type: ignore[assignment, unused-ignore]
    assert await rebalanced.read_through(is_answers_channel) is None


async def test_the_exchange_times_out_only_what_every_member_has_read_past() -> None:
    ahead = member({ANSWERS: 10}, {ANSWERS: 10})
    behind = member({ANSWERS: 10}, {ANSWERS: 4})
    behind._handled({ANSWERS: [record(ANSWERS, THEN - timedelta(minutes=5))]})
    runtime: Any = SimpleNamespace(batch_consumers=[ahead, behind])
    assert await answers_read_through(runtime) == THEN - timedelta(minutes=5)
    unknown = member({ANSWERS: None}, {ANSWERS: 0})
    runtime.batch_consumers = [ahead, unknown]
    assert await answers_read_through(runtime) is None
