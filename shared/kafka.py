"""Kafka plumbing: the producer every service uses, and the consumer loop.

The consumer is a short chain: decode the record, run the handler, commit. Offsets are
committed only after the handler succeeded (or the record was dead-lettered), so a crash
means redelivery, never loss; handlers are idempotent through the inbox, so redelivery
changes nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg
import structlog
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from opentelemetry import context as otel_context

from shared.channel_watch import METADATA_REFRESH_MS, ChannelWatch, refresh_metadata
from shared.envelope import Envelope
from shared.fetch_sessions import use_fetch_sessions
from shared.kafka_access import KafkaAccess
from shared.logging import get_logger
from shared.operational_metrics import (
    CONSUMER_BATCH_DURATION,
    DEAD_LETTERS,
    HANDLER_RETRIES,
    DeadLetterKind,
)
from shared.registry import UndecodableEvent, decode
from shared.topics import SPECS, Topic, dead_letter_of, subscription_pattern
from shared.tracing import consuming, context_from, producing, trace_headers

log = get_logger(__name__)


class _RebalanceCommitsAreWarnings(logging.Filter):
    """aiokafka logs a commit cut short by a rebalance as an error. Here it is expected:
    `commit_what_is_held` takes the refusal and says so, and the records come again to
    whoever holds their partition, where they are harmless. It stays a warning."""

    _GROUP_MOVED_ON = ("RebalanceInProgressError", "IllegalGenerationError", "UnknownMemberIdError")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if (
            record.levelno >= logging.ERROR
            and message.startswith("OffsetCommit failed")
            and any(error in message for error in self._GROUP_MOVED_ON)
        ):
            record.levelno, record.levelname = logging.WARNING, "WARNING"
        return True


logging.getLogger("aiokafka.consumer.group_coordinator").addFilter(_RebalanceCommitsAreWarnings())

Handler = Callable[[Envelope[Any]], Awaitable[None]]

BatchHandler = Callable[
    [Sequence[Envelope[Any]], Sequence[otel_context.Context]],
    Awaitable[Mapping[uuid.UUID, str]],
]
"""Takes a poll's events at once (with each record's trace context, to continue it) and
returns the events it refuses, by event id, with the reason. It must be atomic: raising
means nothing of the batch took effect."""


class Rejected(Exception):
    """Raised by a handler for an event it will never accept, whatever the retries.

    The consumer sends the record to the topic's dead-letter topic with this reason and
    goes on.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Transient(Exception):
    """Raised by a handler for a failure that may pass (a peer is down): retried forever."""


# Failures of the infrastructure rather than of the event: worth waiting out.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    Transient,
    OSError,
    TimeoutError,
    KafkaError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError,
    asyncpg.SerializationError,
    asyncpg.DeadlockDetectedError,
    asyncpg.InterfaceError,
)


def event_headers(envelope: Envelope[Any]) -> list[tuple[str, bytes]]:
    """Headers that let tools route and filter without decoding the value."""
    return [
        ("event-id", str(envelope.id).encode()),
        ("event-type", envelope.type.encode()),
        ("schema-version", str(envelope.schema_version).encode()),
        ("content-type", b"application/json"),
    ]


def dead_letter_headers(
    original: Sequence[tuple[str, bytes]] | None,
    *,
    reason: str,
    topic: str,
    partition: int,
    offset: int,
    consumer: str,
    original_timestamp_ms: int | None,
) -> list[tuple[str, bytes]]:
    """The original record's headers plus why, where from, by whom and when it was refused,
    and when the original reached the broker (a replay past the dedup horizon is refused
    by that time)."""
    original_at = (
        [("dlq-original-at", _iso_from_ms(original_timestamp_ms).encode())]
        if original_timestamp_ms is not None and original_timestamp_ms > 0
        else []
    )
    return [
        *(original or ()),
        ("dlq-reason", reason.encode()),
        ("dlq-topic", topic.encode()),
        ("dlq-partition", str(partition).encode()),
        ("dlq-offset", str(offset).encode()),
        ("dlq-consumer", consumer.encode()),
        ("dlq-at", datetime.now(UTC).isoformat().encode()),
        *original_at,
    ]


def _iso_from_ms(timestamp_ms: int) -> str:
    return datetime.fromtimestamp(timestamp_ms / 1000, UTC).isoformat()


def new_producer(
    kafka: KafkaAccess, *, client_id: str, transactional_id: str | None = None
) -> AIOKafkaProducer:
    """An idempotent producer that waits for every in-sync replica (acks=all)."""
    return AIOKafkaProducer(
        **kafka.client_options(),
        client_id=client_id,
        acks="all",
        enable_idempotence=True,
        transactional_id=transactional_id,
        # A transaction's commit sends what lingers at once, so a linger only gathers its
        # records into fewer requests. Elsewhere a record is sent and waited for (an
        # agency's request or answer): a linger would be pure delay, twice per round
        # trip; under load, records still gather while a request is in flight.
        linger_ms=5 if transactional_id else 0,
    )


async def dead_letter(
    producer: AIOKafkaProducer,
    record: ConsumerRecord[bytes, bytes],
    reason: str,
    consumer: str,
    retry: RetryPolicy | None = None,
    *,
    kind: DeadLetterKind = "rejected",
) -> str:
    """Send a record, as it came, to its topic's dead-letter topic with the reason.

    Retries until the broker has it: the caller must not commit the record's offset
    before it is safe there. Returns the dead-letter topic. `kind` is the reason's kind,
    the label `panjereh_dead_letters_total` counts it by.
    """
    target = dead_letter_of(record.topic)
    headers = dead_letter_headers(
        record.headers,
        reason=reason,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
        consumer=consumer,
        original_timestamp_ms=record.timestamp,
    )
    policy = retry or RetryPolicy()
    attempt = 0
    while True:
        try:
            await producer.send_and_wait(
                target, record.value or b"", key=record.key, headers=headers
            )
            DEAD_LETTERS.labels(record.topic, kind).inc()
            return target
        except KafkaError as error:
            attempt += 1
            log.warning("dead-letter publish failed, retrying", error=repr(error))
            await asyncio.sleep(policy.delay(attempt))


async def publish(producer: AIOKafkaProducer, envelope: Envelope[Any]) -> None:
    """Publish one event straight to its topic and wait for the broker's acknowledgement.

    For producers outside the platform's services (agencies' systems, tools, tests);
    services publish through their outbox instead.
    """
    topic = envelope.destination
    with producing(topic, str(envelope.id)):
        headers = event_headers(envelope) + trace_headers()
        await producer.send_and_wait(
            topic, envelope.to_bytes(), key=envelope.key(), headers=headers
        )


@contextlib.contextmanager
def fetching(consumer: AIOKafkaConsumer, *partitions: TopicPartition) -> Iterator[None]:
    """Let a consumer without a group fetch `partitions` only inside the block.

    For a reader that assigns partitions, asks for offsets, reads a stretch and stops:
    assigned, it pauses them, and fetches only here. A consumer stopped just as it sends a
    fetch can wait 30 s for the broker to close its TLS connection (its event loop's TLS
    shutdown timeout); paused, it has no fetch going out when it stops.
    """
    consumer.resume(*partitions)
    try:
        yield
    finally:
        consumer.pause(*partitions)


async def partitions_of(kafka: KafkaAccess, topic: str) -> set[int]:
    """The partitions of `topic`, as the broker says."""
    # A producer waits for the topic's metadata; a consumer without a group does not.
    producer = AIOKafkaProducer(**kafka.client_options())
    await producer.start()
    try:
        partitions: set[int] = await producer.partitions_for(topic)
        return partitions
    finally:
        await producer.stop()


#: Polls in a row that bring nothing before `read_to_end` takes the topics as read.
IDLE_POLLS_AT_END = 5


async def read_to_end(
    kafka: KafkaAccess, topics: Sequence[str], *, client_id: str
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every committed record on `topics`, from their beginning to their end as it is now
    (what is written meanwhile is not waited for), without a consumer group.

    For the tools that read a whole topic once: restore, dead letters, audit verification.
    """
    consumer = AIOKafkaConsumer(
        **kafka.client_options(),
        isolation_level="read_committed",
        enable_auto_commit=False,
        client_id=client_id,
    )
    partitions = [
        TopicPartition(topic, partition)
        for topic in topics
        for partition in sorted(await partitions_of(kafka, topic))
    ]
    await consumer.start()
    try:
        consumer.assign(partitions)
        consumer.pause(*partitions)  # fetching only while it reads: see `fetching`
        await consumer.seek_to_beginning(*partitions)
        ends = await consumer.end_offsets(partitions)
        found: list[ConsumerRecord[bytes, bytes]] = []
        pending = {tp for tp in partitions if ends[tp] > 0}
        idle = 0
        with fetching(consumer, *partitions):
            # A partition whose last offsets hold no record to read (a transaction's
            # marker, records gone) may never bring its position to its end: it is taken
            # as read once nothing moves.
            while pending and idle < IDLE_POLLS_AT_END:
                before = {tp: await consumer.position(tp) for tp in pending}
                batch = await consumer.getmany(*pending, timeout_ms=500)
                for tp, records in batch.items():
                    found.extend(record for record in records if record.offset < ends[tp])
                positions = {tp: await consumer.position(tp) for tp in pending}
                idle = 0 if batch or positions != before else idle + 1
                pending = {tp for tp in pending if positions[tp] < ends[tp]}
        return found
    finally:
        await consumer.stop()


#: How many dead-lettered records a consumer remembers (topic, partition, offset), so
#: that one delivered again in the same process is not dead-lettered twice.
REMEMBERED_DEAD_LETTERS = 10_000


class DeadLettered:
    """The records a reader has dead-lettered lately, by topic, partition and offset.

    A rebalance puts every partition back at its last commit, and a refused record is
    refused again: its letter is already sent. Bounded (the oldest are forgotten), and
    per process: after a restart a second letter is possible, a lost one never.
    """

    def __init__(self, capacity: int = REMEMBERED_DEAD_LETTERS) -> None:
        self._capacity = capacity
        self._records: OrderedDict[tuple[str, int, int], None] = OrderedDict()

    def __contains__(self, record: ConsumerRecord[Any, Any]) -> bool:
        return (record.topic, record.partition, record.offset) in self._records

    def add(self, record: ConsumerRecord[Any, Any]) -> None:
        self._records[(record.topic, record.partition, record.offset)] = None
        if len(self._records) > self._capacity:
            self._records.popitem(last=False)


#: How often a group member hears from the coordinator. A rebalance (a new agency's
#: channels found by a pattern subscription, a member joining) waits until every member
#: has heard of it, and the whole group stands still meanwhile: with the client's default
#: of 3 s, each new agency paused the exchange's transactions for up to 3 s.
HEARTBEAT_INTERVAL_MS = 500


@dataclass(frozen=True)
class RetryPolicy:
    """How a consumer retries a failing handler before giving up on the record.

    Transient failures (infrastructure) are retried without limit; any other failure is
    retried `attempts` times and then dead-lettered with the last error as the reason.
    """

    attempts: int = 5
    first_delay: float = 0.2
    max_delay: float = 30.0

    def delay(self, attempt: int) -> float:
        return float(min(self.max_delay, self.first_delay * 2 ** max(0, attempt - 1)))


async def reconnecting(
    session: Callable[[], Awaitable[None]],
    stopping: asyncio.Event,
    backoff: RetryPolicy,
    *,
    fatal: tuple[type[BaseException], ...] = (),
    **context: str,
) -> None:
    """Run `session` (connect, then read until `stopping`) until it returns. A lost or
    absent broker ends a session, not the reader: the next one starts after the policy's
    delay, from the group's committed offsets. `fatal` errors end it all (a refusal that
    waiting does not change)."""
    attempt = 0
    while not stopping.is_set():
        try:
            await session()
            return
        except fatal:
            raise
        except (KafkaError, OSError) as error:
            attempt += 1
            log.warning(
                "cannot reach the broker, reconnecting",
                error=repr(error),
                attempt=attempt,
                **context,
            )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stopping.wait(), timeout=backoff.delay(attempt))


async def commit_what_is_held(
    consumer: AIOKafkaConsumer, offsets: Mapping[TopicPartition, int]
) -> bool:
    """Commit `offsets` of the partitions `consumer` still holds; False if any were not.

    A rebalance while a batch was handled may have moved some of its partitions to
    another member, or changed the group's generation: the broker then refuses the
    commit. Either way the uncommitted records come again, to whichever member holds their
    partition now, and consumers here take redeliveries harmlessly. So this is a warning,
    and the consumer goes on reading instead of leaving the group (which would only start
    another rebalance).
    """
    held = consumer.assignment()
    moved = sorted(f"{tp.topic}:{tp.partition}" for tp in offsets if tp not in held)
    kept = {tp: offset for tp, offset in offsets.items() if tp in held}
    try:
        if kept:
            await consumer.commit(kept)
    except CommitFailedError:
        moved += sorted(f"{tp.topic}:{tp.partition}" for tp in kept)
    if moved:
        log.warning("commit refused after a rebalance; the records come again", partitions=moved)
    return not moved


def member_client_id(group: str) -> str:
    """A group member's client id: its group, host and process, so that whoever describes
    the group (an operator, a test) sees which process holds which partitions when a
    service runs as several."""
    return f"{group}-{socket.gethostname()}-{os.getpid()}"


_ARRIVED_AT = otel_context.create_key("panjereh-arrived-at")


_LOG_APPEND_TIME = 1


def delivery_context(record: ConsumerRecord[bytes, bytes]) -> otel_context.Context:
    """The context a record is handled in: the trace its headers continue, and, on a
    topic with broker timestamps, when it reached the broker (`arrived_at`)."""
    context = context_from(record.headers)
    if record.timestamp_type != _LOG_APPEND_TIME:
        return context  # its producer's clock: nothing to judge by
    arrived = datetime.fromtimestamp(record.timestamp / 1000, UTC)
    return otel_context.set_value(_ARRIVED_AT, arrived, context)


def arrived_at(context: otel_context.Context | None = None) -> datetime | None:
    """When the record handled in `context` (the current one by default) reached the
    broker, by the broker's clock; None outside a record's handling and on topics whose
    timestamps are their producers' (`TopicSpec.broker_timestamps`)."""
    value = otel_context.get_value(_ARRIVED_AT, context)
    return value if isinstance(value, datetime) else None


class EventConsumer:
    """Consumes topics in a consumer group and hands each event to one handler.

    Contract: `run()` blocks until `stop()`; the handler may block (it is awaited one
    record at a time per consumer, in partition order); raising `Rejected` dead-letters
    the record; any other exception is retried per the policy. With a `batch` handler,
    each poll of a partition is handed over at once (for volume: one transaction, not
    one per event), and `handler` is the per-event fallback for a batch that fails.
    Records that cannot be decoded are dead-lettered with the reason and the original
    bytes. Every consumed topic must declare a dead-letter topic. A per-agency family
    among `topics` means every agency's topic of it: the consumer subscribes by pattern
    and finds an agency's new channel when the access manager announces it
    (`shared/channel_watch.py`).
    """

    def __init__(
        self,
        *,
        group: str,
        topics: Sequence[Topic],
        handler: Handler,
        kafka: KafkaAccess,
        retry: RetryPolicy | None = None,
        max_records: int = 500,
        batch: BatchHandler | None = None,
    ) -> None:
        missing = [str(t) for t in topics if SPECS[t].dead_letter is None]
        if missing:
            raise ValueError(f"topics {missing} declare no dead-letter topic")
        self.group = group
        self._topics = [t.value for t in topics]
        self._pattern: str | None = None
        if any(SPECS[t].per_agency for t in topics):
            self._pattern = subscription_pattern(self._topics)
        self._handler = handler
        self._batch = batch
        self._kafka = kafka
        self._retry = retry or RetryPolicy()
        self._max_records = max_records
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._dead_letters: AIOKafkaProducer | None = None
        self.handled = 0
        self.dead_lettered = 0
        self._dead_lettered = DeadLettered()
        # What `read_through` needs: whether records are in hand, and per partition when
        # the last one handled reached the broker.
        self._handling = False
        self._arrivals: dict[TopicPartition, datetime] = {}

    async def run(self) -> None:
        """Consume until `stop()`; a lost or absent broker is waited out, never fatal."""
        await reconnecting(self._consume, self._stopping, self._retry, group=self.group)

    async def _consume(self) -> None:
        self._consumer = AIOKafkaConsumer(
            *(self._topics if self._pattern is None else ()),
            **self._kafka.client_options(),
            group_id=self.group,
            client_id=member_client_id(self.group),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
            metadata_max_age_ms=METADATA_REFRESH_MS,
            heartbeat_interval_ms=HEARTBEAT_INTERVAL_MS,
        )
        consumer = self._consumer
        watch: ChannelWatch | None = None
        watching: asyncio.Task[None] | None = None
        if self._pattern is not None:
            consumer.subscribe(pattern=self._pattern)
            watch = ChannelWatch(
                self._kafka, opened=lambda: refresh_metadata(consumer), refuse=self._dead_letter
            )
        self._dead_letters = new_producer(self._kafka, client_id=f"{self.group}-dlq")
        try:
            await self._dead_letters.start()
            if watch is not None:
                await watch.start()
                watching = asyncio.create_task(watch.run(self._stopping))
            await self._consumer.start()
            await use_fetch_sessions(self._consumer)
            while not self._stopping.is_set():
                if watching is not None and watching.done():
                    watching.result()  # its failure ends this session, to reconnect
                batches = await self._consumer.getmany(
                    timeout_ms=500, max_records=self._max_records
                )
                self._handling = bool(batches)
                if self._batch is not None and batches:
                    # The whole poll, every partition, in one batch and one commit: a
                    # poll costs one database transaction and one round trip to the
                    # group's coordinator, however many agencies' channels it spans.
                    with CONSUMER_BATCH_DURATION.labels(self.group).time():
                        await self._process_batch(
                            [record for records in batches.values() for record in records]
                        )
                    await self._commit(
                        {tp: records[-1].offset + 1 for tp, records in batches.items()}
                    )
                    self._handled(batches)
                    continue
                for tp, records in batches.items():
                    with CONSUMER_BATCH_DURATION.labels(self.group).time():
                        for record in records:
                            await self._process(record)
                            if self._stopping.is_set():
                                break
                    await self._commit({tp: record.offset + 1})
                self._handled(batches)
        finally:
            if watching is not None:
                watching.cancel()
                await asyncio.gather(watching, return_exceptions=True)
            if watch is not None:
                await watch.stop()
            await self._consumer.stop()
            await self._dead_letters.stop()
            self._consumer = None  # between sessions nothing is read: read_through says so

    async def stop(self) -> None:
        """Finish the record in hand, commit it, and return from `run()`."""
        self._stopping.set()

    def _handled(
        self, batches: Mapping[TopicPartition, list[ConsumerRecord[bytes, bytes]]]
    ) -> None:
        for tp, records in batches.items():
            self._arrivals[tp] = datetime.fromtimestamp(records[-1].timestamp / 1000, UTC)
        self._handling = False

    async def read_through(self, wanted: Callable[[str], bool]) -> datetime | None:
        """The moment up to which every record that reached the broker on the partitions
        of `wanted` topics this member holds has been handled: now when each is read to
        its end, else the arrival of the last record handled on the one furthest behind.
        None when that cannot be told (records in hand, a partition not fetched yet, or
        behind with nothing handled since it was assigned)."""
        consumer = self._consumer
        if consumer is None or self._handling:
            return None
        through = datetime.now(UTC)
        for tp in list(consumer.assignment()):
            if not wanted(tp.topic):
                continue
            # A rebalance may take partitions away while this waits for a position below.
            if tp not in consumer.assignment():
                return None
            end = consumer.highwater(tp)
            if end is None:
                return None
            try:
                position = await asyncio.wait_for(consumer.position(tp), 1.0)
            except TimeoutError:
                return None  # its position is being reset: not known yet
            except IllegalStateError:
                return None  # no longer assigned
            if position >= end:
                continue
            last = self._arrivals.get(tp)
            if last is None:
                return None
            through = min(through, last)
        return through

    async def lag(self) -> dict[TopicPartition, int]:
        """Per partition this member holds: records up to the last stable offset that the
        group has not committed past (all of them where it has committed nothing)."""
        consumer = self._consumer
        assigned = consumer.assignment() if consumer is not None else set()
        if consumer is None or not assigned:
            return {}
        ends = await consumer.end_offsets(list(assigned))
        # One OffsetFetch for every partition (the public `committed` asks one at a time).
        committed = await consumer._coordinator.fetch_committed_offsets(assigned)
        starts: dict[TopicPartition, int] = {}
        if any(committed.get(tp) is None or committed[tp].offset < 0 for tp in assigned):
            starts = await consumer.beginning_offsets(list(assigned))
        lag: dict[TopicPartition, int] = {}
        for tp in assigned:
            held = committed.get(tp)
            position = held.offset if held is not None and held.offset >= 0 else starts[tp]
            lag[tp] = max(0, ends[tp] - position)
        return lag

    async def _commit(self, offsets: dict[TopicPartition, int]) -> None:
        assert self._consumer is not None
        await commit_what_is_held(self._consumer, offsets)

    async def _process(self, record: ConsumerRecord[bytes, bytes]) -> None:
        with structlog.contextvars.bound_contextvars(
            topic=record.topic, partition=record.partition, offset=record.offset
        ):
            try:
                envelope = decode(record.value, record.topic)
            except UndecodableEvent as error:
                await self._dead_letter(record, error.reason, "undecodable")
                return
            with (
                structlog.contextvars.bound_contextvars(
                    event_id=str(envelope.id), event_type=envelope.type
                ),
                self._consuming(record),
            ):
                await self._handle(record, envelope)

    def _consuming(
        self, record: ConsumerRecord[bytes, bytes]
    ) -> contextlib.AbstractContextManager[Any]:
        """The span of handling this record, continuing the trace it carries."""
        return consuming(
            record.headers,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            group=self.group,
            context=delivery_context(record),
        )

    async def _process_batch(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        """A poll's records through the batch handler, in one go.

        Undecodable records are dead-lettered first. A batch that keeps failing (not for
        a transient reason) is taken apart: each event then goes through the per-event
        handler, with its retries and dead-lettering, so one bad event fails alone.
        """
        assert self._batch is not None
        decoded: list[tuple[ConsumerRecord[bytes, bytes], Envelope[Any]]] = []
        for record in records:
            try:
                decoded.append((record, decode(record.value, record.topic)))
            except UndecodableEvent as error:
                await self._dead_letter(record, error.reason, "undecodable")
        if not decoded:
            return
        envelopes = [envelope for _, envelope in decoded]
        parents = [delivery_context(record) for record, _ in decoded]
        failures = 0
        while True:
            try:
                refused = await self._batch(envelopes, parents)
                break
            except TRANSIENT_ERRORS as error:
                failures += 1
                HANDLER_RETRIES.labels(self.group, "transient").inc()
                log.warning("transient failure, retrying", error=repr(error), attempt=failures)
            except Exception as error:
                failures += 1
                # A refusal will not pass with retries: find the refused event at once.
                if failures >= self._retry.attempts or isinstance(error, Rejected):
                    log.warning("batch keeps failing; one event at a time", error=repr(error))
                    for record, envelope in decoded:
                        with self._consuming(record):
                            await self._handle(record, envelope)
                    return
                HANDLER_RETRIES.labels(self.group, "failure").inc()
                log.warning("batch failed, retrying", error=repr(error), attempt=failures)
            await asyncio.sleep(self._retry.delay(failures))
        for record, envelope in decoded:
            if envelope.id in refused:
                await self._dead_letter(record, refused[envelope.id])
        self.handled += sum(1 for _, envelope in decoded if envelope.id not in refused)

    async def _handle(self, record: ConsumerRecord[bytes, bytes], envelope: Envelope[Any]) -> None:
        failures = 0
        while True:
            try:
                await self._handler(envelope)
                self.handled += 1
                return
            except Rejected as rejection:
                await self._dead_letter(record, rejection.reason)
                return
            except TRANSIENT_ERRORS as error:
                failures += 1
                HANDLER_RETRIES.labels(self.group, "transient").inc()
                log.warning("transient failure, retrying", error=repr(error), attempt=failures)
            except Exception as error:
                failures += 1
                if failures >= self._retry.attempts:
                    await self._dead_letter(
                        record, f"handler failed {failures} times: {error!r}", "handler_failed"
                    )
                    return
                HANDLER_RETRIES.labels(self.group, "failure").inc()
                log.warning("handler failed, retrying", error=repr(error), attempt=failures)
            await asyncio.sleep(self._retry.delay(failures))

    async def _dead_letter(
        self,
        record: ConsumerRecord[bytes, bytes],
        reason: str,
        kind: DeadLetterKind = "rejected",
    ) -> None:
        assert self._dead_letters is not None
        if record in self._dead_lettered:
            # The same record again (a rebalance, a seek back): its letter is already sent.
            log.info("record already dead-lettered, delivered again", reason=reason)
            return
        target = await dead_letter(
            self._dead_letters, record, reason, self.group, self._retry, kind=kind
        )
        self._dead_lettered.add(record)
        self.dead_lettered += 1
        log.warning("event dead-lettered", reason=reason, dead_letter_topic=target)
