"""The transactional outbox, and the relay that publishes it exactly once.

A service never publishes an event directly: it calls `enqueue` inside the transaction
that changes its state, so the change and its announcement commit together or not at
all.

The relay publishes what is pending in id order, topic by topic: rows for a topic it may
not write yet (an agency's channel the access manager has not made) wait, with every later
row of that topic, while the other topics' rows go on. Otherwise one such row would hold
up everything behind it, including the very `catalog.agencies` record that makes the
access manager make that channel. Each batch is one Kafka transaction that also carries a
progress marker (which outbox ids the batch holds) on
`platform.outbox-progress`; the outbox rows are stamped as published only after that
transaction committed. If the relay dies between the Kafka commit and the stamp, its
successor (same transactional id, which fences the old one and settles its open
transaction) reads the last marker and stamps those rows instead of publishing them
again. Consumers read with `read_committed`, so they see each event exactly once.

A service may run as several processes, each with its relay, but only one relay publishes
an outbox: the one holding its lease, a PostgreSQL session-level advisory lock keyed by
the schema and taken on the connection the relay listens on. The others stand by and try
for the lease every second or so. When the holder dies, its connection closes and
PostgreSQL frees the lease; the standby that takes it starts its producer with the same
transactional id, which fences any zombie of the old holder and settles its open
transaction, and the marker recovery above stamps what the old holder committed to Kafka
but did not stamp. The lease keeps relays from fencing each other in turn; the fencing
keeps a holder that lost its lease but has not noticed yet from publishing anything.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import (
    KafkaError,
    MessageSizeTooLargeError,
    ProducerFenced,
    TopicAuthorizationFailedError,
    UnknownTopicOrPartitionError,
)
from aiokafka.partitioner import DefaultPartitioner
from asyncpg import InterfaceError
from opentelemetry import context as otel_context
from pydantic import BaseModel, ConfigDict, Field

from shared.db import Connection, Pool, create_pool
from shared.envelope import Envelope
from shared.failpoints import failpoint
from shared.inbox import prune_processed
from shared.kafka import event_headers, fetching, new_producer
from shared.kafka_access import KafkaAccess
from shared.logging import configure_logging, get_logger
from shared.outbox_parking import park, refused_for_size
from shared.record_limits import EventTooLarge, oversize
from shared.settings import PlatformSettings
from shared.topics import Topic
from shared.tracing import producer_headers

log = get_logger(__name__)

PROGRESS_TOPIC = Topic.PLATFORM_OUTBOX_PROGRESS.value

#: How long the relay waits for the broker to say whether it may write a topic before
#: that topic's rows wait a round (the producer alone would wait its whole request timeout
#: for a topic that does not exist).
TOPIC_CHECK_SECONDS = 2.0

#: How often the relay asks again about topics whose rows wait: each ask is a metadata
#: request (and aiokafka logs each refusal as an error), and new rows wake the relay often.
WAITING_TOPICS_RECHECK_SECONDS = 2.0

#: The advisory lock whose holder is the one relay that publishes a schema's outbox: the
#: key is derived in SQL from the schema name (`$1`), so every process derives the same.
LEASE_KEY = "hashtext('panjereh-outbox-relay-' || $1)"


class ProgressMarker(BaseModel):
    """Which outbox rows one committed relay transaction carried."""

    model_config = ConfigDict(strict=True, frozen=True, extra="forbid")

    relay: str = Field(description="The relay's transactional id; also the record key.")
    outbox_schema: str = Field(description="The Postgres schema whose outbox it publishes.")
    ids: list[int] = Field(description="Outbox row ids published in that transaction.")


@dataclass(frozen=True)
class Change:
    """A state change written by the same statement as the events that announce it.

    `ctes` is one or more data-modifying common table expressions, comma-separated
    (`used AS (UPDATE ...), added AS (INSERT ...)`), whose parameters are `$1`...`$n` for
    the `n` values in `args`. Postgres runs every one of them even though nothing reads
    their results, so the change and its events cost one round trip, not two, and the
    statement is atomic by itself: it needs no transaction around it.

    `guard` names one of the CTEs: if it yields no row, the events are not written either
    (the change's own CTEs must then write nothing, by reading from the guard too). This
    is how a write judged on a plain read checks, in the same statement, that what it was
    judged on has not changed meanwhile.
    """

    ctes: str
    args: tuple[Any, ...] = ()
    guard: str | None = None


async def enqueue(
    connection: Connection, envelope: Envelope[Any], *, along: Change | None = None
) -> bool:
    """Add an event to the outbox of the connection's schema, in the caller's transaction,
    or in the statement that writes the `Change` given `along`.

    The current trace context is stored with the event, so the consumer's span joins the
    trace of the request that caused it. False if the change's guard found no row, so
    nothing was written.
    """
    return await enqueue_many(connection, [envelope], along=along)


async def enqueue_many(
    connection: Connection,
    envelopes: Sequence[Envelope[Any]],
    parents: Sequence[otel_context.Context | None] | None = None,
    *,
    along: Change | None = None,
) -> bool:
    """`enqueue` for several events, kept in this order: one statement, one relay wake-up.

    For handlers that apply a batch of events in one transaction; same contract. Each
    event's trace continues from its entry in `parents` (e.g. the context of the record
    that caused it), else from the current context.
    """
    if along is None and not connection.is_in_transaction():
        raise RuntimeError(
            "enqueue must run inside the transaction that changes the state,"
            " or write the change along"
        )
    if not envelopes:
        if along is not None:
            raise ValueError("a change written along events needs at least one event")
        return True
    columns: tuple[list[Any], ...] = ([], [], [], [], [])
    for index, envelope in enumerate(envelopes):
        parent = parents[index] if parents is not None else None
        headers = _outbox_headers(envelope, parent)
        row = (
            envelope.id,
            envelope.destination,
            envelope.key(),
            envelope.to_bytes(),
            json.dumps(headers),
        )
        # Refused here, in the transaction that causes it, never stuck in the outbox.
        too_large = oversize(row[1], row[2], row[3], [(n, v.encode()) for n, v in headers])
        if too_large is not None:
            raise EventTooLarge(envelope.type, too_large)
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    change = along or Change("")
    guarded = f" WHERE EXISTS (SELECT 1 FROM {change.guard})" if change.guard else ""
    first = len(change.args) + 1
    events = ", ".join(
        f"${first + offset}::{kind}[]"
        for offset, kind in enumerate(("uuid", "text", "bytea", "bytea", "text"))
    )
    # The notification is delivered on commit only; it wakes the relay at once instead of
    # at its next poll.
    status = await connection.execute(
        f"WITH {change.ctes + ', ' if change.ctes else ''}"
        "added AS (INSERT INTO outbox (event_id, topic, key, value, headers)"
        f" SELECT e, t, k, v, h::jsonb FROM unnest({events}) WITH ORDINALITY"
        f" AS rows(e, t, k, v, h, n){guarded} ORDER BY n RETURNING 1)"
        " SELECT pg_notify('outbox_' || current_schema(), '') FROM (SELECT 1) once"
        " WHERE EXISTS (SELECT 1 FROM added)",
        *change.args,
        *columns,
    )
    return bool(status == "SELECT 1")


@dataclass(frozen=True)
class Backlog:
    """What waits in an outbox: rows not yet published, the oldest one's age in seconds
    (0 when none waits), and the rows set aside as too large for their topic."""

    rows: int
    oldest_age_seconds: float
    parked: int


async def backlog(connection: Connection) -> Backlog:
    """The outbox's backlog, read through the partial index of unpublished rows."""
    row = await connection.fetchrow(
        "SELECT count(*) AS rows,"
        " coalesce(extract(epoch FROM now() - min(created_at)), 0)::float8 AS age"
        " FROM outbox WHERE published_at IS NULL"
    )
    parked = await connection.fetchval("SELECT count(*) FROM outbox_parked")
    return Backlog(rows=row["rows"], oldest_age_seconds=max(0.0, row["age"]), parked=parked)


def _outbox_headers(
    envelope: Envelope[Any], parent: otel_context.Context | None
) -> list[list[str]]:
    headers = event_headers(envelope) + producer_headers(
        envelope.destination, str(envelope.id), parent
    )
    return [[name, value.decode()] for name, value in headers]


class OutboxRelay:
    """Publishes one schema's outbox to Kafka, exactly once, in id order per topic.

    Contract: `run()` blocks until `stop()` and publishes only while this relay holds the
    schema's lease; without it the relay is a standby, publishes nothing and tries for the
    lease again every `standby_interval` seconds, so of several processes of one service
    exactly one publishes and another takes over about a second after it dies. The relays
    of one schema share `relay_id` (the default does): it is their transactional id, so the
    one taking the lease fences what is left of the last holder. A relay fenced by another
    producer with its id steps back to standby; one whose lease connection fails stops
    publishing at once, reconnects with backoff and tries for the lease again. The active
    relay never gives up on a pending row: Kafka and Postgres failures are retried with
    backoff, and a topic it may not write yet (missing, or no ACL yet) is asked about again
    every few seconds while the other topics' rows are published. `stop()` ends `run()`
    promptly, active or standby, and the lease is given up.

    `publish_pending()` publishes one batch whether this relay holds the lease or not: it
    is for a caller that is the schema's only relay (tests, tools).
    """

    def __init__(
        self,
        pool: Pool,
        *,
        schema: str,
        kafka: KafkaAccess,
        relay_id: str | None = None,
        batch_size: int = 500,
        poll_interval: float = 1.0,
        standby_interval: float = 1.0,
        keep_published: timedelta = timedelta(days=1),
        keep_processed: timedelta | None = None,
        prune_every: float = 300.0,
    ) -> None:
        self._pool = pool
        self._schema = schema
        self._kafka = kafka
        self.relay_id = relay_id or f"{schema}-outbox-relay"
        self._batch_size = batch_size
        self._poll_interval = poll_interval
        self._standby_interval = standby_interval
        self._producer: AIOKafkaProducer | None = None
        self._holds_lease = False
        self._wake = asyncio.Event()
        self._stopping = asyncio.Event()
        # Ids Kafka has committed but Postgres has not yet stamped (a failed UPDATE).
        self._unstamped: list[int] = []
        # Topics the broker would not let us write at the last look: their rows wait.
        self.waiting_topics: set[str] = set()
        self._waiting_checked_at = float("-inf")
        self.published = 0
        # Published rows are only history (Kafka holds the events now): kept a while for
        # looking into, then deleted, so the outbox does not grow with every event ever.
        self._keep_published = keep_published
        # The inbox is pruned by the same one process per schema, on the same schedule:
        # rows older than the dedup horizon (None keeps them all).
        self._keep_processed = keep_processed
        self._prune_every = prune_every
        self._pruned_at = float("-inf")

    @property
    def active(self) -> bool:
        """Whether this relay holds its schema's lease, so its `run()` publishes."""
        return self._holds_lease

    async def run(self) -> None:
        failures = 0
        try:
            while not self._stopping.is_set():
                try:
                    async with self._lease_connection() as lease:
                        failures = 0
                        await self._publish_while_leased(lease)
                except Exception as error:  # Postgres unreachable: the lease went with it
                    failures += 1
                    log.warning(
                        "outbox relay lost its database connection, reconnecting",
                        relay=self.relay_id,
                        error=repr(error),
                    )
                    await self._sleep(_backoff(failures))
        finally:
            await self._disconnect()

    async def stop(self) -> None:
        self._stopping.set()
        self._wake.set()

    async def _publish_while_leased(self, lease: Connection) -> None:
        """Stand by or publish until `stop()`; raises once `lease` fails, which has
        freed the lease in Postgres: another relay may hold it already."""
        failures = 0
        while not self._stopping.is_set():
            if not _is_open(lease):
                raise ConnectionError("the connection holding the lease closed")
            if not self._holds_lease and not await self._take_lease(lease):
                await self._stand_by()
                continue
            try:
                if self._producer is None:
                    await self._connect()
                count = await self.publish_pending()
                failures = 0
            except ProducerFenced:
                log.warning("another producer with this relay's id fenced it", relay=self.relay_id)
                await self._step_back(lease, reason="fenced")
                # A standby like any other: whoever fenced it gets a turn at the lease.
                await self._stand_by()
                continue
            except Exception as error:  # whatever failed, pending rows wait for a retry
                failures += 1
                log.warning("outbox relay failed, reconnecting", error=repr(error))
                await self._disconnect()
                await self._sleep(_backoff(failures))
                continue
            if count < self._batch_size:
                await self._prune_when_due()
                await self._sleep(self._poll_interval)

    @contextlib.asynccontextmanager
    async def _lease_connection(self) -> AsyncIterator[Connection]:
        """A connection of the pool held for as long as the relay may hold the lease on
        it, listening for new rows; the lease is given up before it goes back."""
        connection = await self._pool.acquire()
        try:
            # Wakes the relay from its sleep: it must stop publishing once the lease is gone.
            connection.add_termination_listener(self._on_notify)
            await connection.add_listener(f"outbox_{self._schema}", self._on_notify)
            yield connection
        finally:
            try:
                reason = "stopping" if self._stopping.is_set() else "its connection failed"
                await self._step_back(connection, reason=reason)
                if _is_open(connection):
                    connection.remove_termination_listener(self._on_notify)
                    await connection.remove_listener(f"outbox_{self._schema}", self._on_notify)
            except BaseException:
                # The pool does not unlock what a released connection holds: one that may
                # still hold the lease is closed rather than handed back with it.
                if _is_open(connection):
                    connection.terminate()
                raise
            finally:
                await self._pool.release(connection)

    async def _take_lease(self, lease: Connection) -> bool:
        """Try for the lease once. On taking it, any producer is dropped: the one started
        next fences what is left of the last holder and recovers its last marker."""
        if not await lease.fetchval(f"SELECT pg_try_advisory_lock({LEASE_KEY})", self._schema):
            return False
        self._holds_lease = True
        log.info("outbox relay is active", relay=self.relay_id, schema=self._schema)
        # A producer started before the lease (by `publish_pending`) missed what others
        # published since: only a fresh start fences them and reads their marker.
        await self._disconnect()
        return True

    async def _step_back(self, lease: Connection, *, reason: str) -> None:
        """Stop publishing, then give the lease up (if the connection still holds it)."""
        await self._disconnect()
        if not self._holds_lease:
            return
        if _is_open(lease):
            await lease.execute(f"SELECT pg_advisory_unlock({LEASE_KEY})", self._schema)
        self._holds_lease = False
        log.info(
            "outbox relay steps back to standby",
            relay=self.relay_id,
            schema=self._schema,
            reason=reason,
        )

    async def publish_pending(self) -> int:
        """Publish one batch of pending rows; returns how many were published.

        Rows of a topic the relay may not write yet are left pending (see `_writable`).
        """
        if self._producer is None:
            await self._connect()
        assert self._producer is not None
        if self._unstamped:
            await self._stamp(self._unstamped)
        if time.monotonic() - self._waiting_checked_at >= WAITING_TOPICS_RECHECK_SECONDS:
            self._waiting_checked_at = time.monotonic()
            await self._writable_of(self.waiting_topics)
        async with self._pool.acquire() as connection:
            rows = await connection.fetch(
                "SELECT id, topic, key, value, headers FROM outbox"
                " WHERE published_at IS NULL AND topic <> ALL($2::text[]) ORDER BY id LIMIT $1",
                self._batch_size,
                sorted(self.waiting_topics),
            )
        writable = await self._writable_of({row["topic"] for row in rows})
        rows = [row for row in rows if row["topic"] in writable]
        # A row too large for its topic (enqueued before its limit was checked, or under a
        # larger one) would fail every retry of the batch: parked, the rest go on.
        too_large = refused_for_size(rows)
        if too_large:
            await park(self._pool, self.relay_id, too_large)
            rows = [row for row in rows if row["id"] not in too_large]
        if not rows:
            return 0
        ids = [row["id"] for row in rows]
        deliveries: list[asyncio.Future[Any]] = []
        try:
            async with self._producer.transaction():
                for row in rows:
                    headers = [(name, value.encode()) for name, value in row["headers"]]
                    deliveries.append(
                        await self._producer.send(
                            row["topic"], row["value"], key=row["key"], headers=headers
                        )
                    )
                marker = self._marker(ids)
                deliveries.append(
                    await self._producer.send(PROGRESS_TOPIC, marker, key=self.relay_id.encode())
                )
        except Exception:
            await self._park_refused_for_size(rows, deliveries)
            raise
        finally:
            # A failed transaction fails every delivery in it; the transaction's own error
            # is the one that matters, so the deliveries' errors are read and dropped.
            for delivery in deliveries:
                delivery.add_done_callback(_read_outcome)
        parked = await self._park_refused_for_size(rows, deliveries)
        ids = [row_id for row_id in ids if row_id not in parked]
        self._unstamped = ids
        failpoint("outbox.after_kafka_commit")
        await self._stamp(ids)
        self.published += len(ids)
        return len(ids)

    async def _park_refused_for_size(
        self, rows: Sequence[Any], deliveries: Sequence[asyncio.Future[Any]]
    ) -> set[int]:
        """Park the rows whose records the broker refused as too large (its topic's limit
        may be lower than declared); returns their ids. Other failures are retried."""
        refused = {
            row["id"]: f"the broker refused it: {delivery.exception()!r}"
            for row, delivery in zip(rows, deliveries, strict=False)
            if delivery.done()
            and not delivery.cancelled()
            and isinstance(delivery.exception(), MessageSizeTooLargeError)
        }
        await park(self._pool, self.relay_id, refused)
        return set(refused)

    async def _writable_of(self, topics: set[str]) -> set[str]:
        """Those of `topics` the relay may write now, asked together: a missing topic
        costs its wait once a round, not once per topic."""
        names = sorted(topics)
        verdicts = await asyncio.gather(*(self._writable(topic) for topic in names))
        return {topic for topic, writable in zip(names, verdicts, strict=True) if writable}

    async def _writable(self, topic: str) -> bool:
        """Whether the broker lets this relay write `topic` now; if not, the topic waits.

        Known topics are answered from the producer's metadata at no cost; an unknown
        one costs a metadata request. A topic that is missing, or that no ACL lets us see
        yet, is expected for an agency's channel until the access manager has made it.
        """
        assert self._producer is not None
        try:
            await asyncio.wait_for(self._producer.partitions_for(topic), TOPIC_CHECK_SECONDS)
        except (TopicAuthorizationFailedError, UnknownTopicOrPartitionError, TimeoutError) as error:
            if topic not in self.waiting_topics:
                log.warning(
                    "outbox rows wait for a topic the relay may not write yet",
                    relay=self.relay_id,
                    topic=topic,
                    error=repr(error),
                )
            self.waiting_topics.add(topic)
            return False
        if topic in self.waiting_topics:
            self.waiting_topics.discard(topic)
            log.info("waiting outbox rows go on", relay=self.relay_id, topic=topic)
        return True

    async def prune_published(self, chunk: int = 1000) -> int:
        """Delete rows published longer ago than `keep_published`; returns how many.

        Works from the oldest id in chunks, each its own short transaction, and stops at
        the first chunk with nothing to delete: ids grow with time, so what lies beyond is
        younger (or not published yet, which is never deleted).
        """
        deleted = 0
        while True:
            async with self._pool.acquire() as connection:
                status = await connection.execute(
                    "WITH oldest AS (SELECT id FROM outbox ORDER BY id LIMIT $2)"
                    " DELETE FROM outbox USING oldest WHERE outbox.id = oldest.id"
                    " AND outbox.published_at < now() - $1::interval",
                    self._keep_published,
                    chunk,
                )
            count = int(status.split()[-1])
            deleted += count
            if count < chunk:
                return deleted

    async def _prune_when_due(self) -> None:
        if time.monotonic() - self._pruned_at < self._prune_every:
            return
        self._pruned_at = time.monotonic()
        deleted = await self.prune_published()
        if deleted:
            log.info("published outbox rows pruned", relay=self.relay_id, deleted=deleted)
        if self._keep_processed is not None:
            forgotten = await prune_processed(self._pool, self._keep_processed)
            if forgotten:
                log.info(
                    "inbox rows past the dedup horizon pruned",
                    relay=self.relay_id,
                    deleted=forgotten,
                )

    def _marker(self, ids: list[int]) -> bytes:
        marker = ProgressMarker(relay=self.relay_id, outbox_schema=self._schema, ids=ids)
        return marker.model_dump_json().encode()

    async def _stamp(self, ids: list[int]) -> None:
        async with self._pool.acquire() as connection:
            await connection.execute(
                "UPDATE outbox SET published_at = now()"
                " WHERE id = ANY($1::bigint[]) AND published_at IS NULL",
                ids,
            )
        self._unstamped = []

    async def _connect(self) -> None:
        producer = new_producer(
            self._kafka, client_id=self.relay_id, transactional_id=self.relay_id
        )
        # Starting with our transactional id fences any predecessor and settles its open
        # transaction, so the marker read below is final.
        await producer.start()
        self._producer = producer
        committed = await self._last_marker()
        if committed:
            await self._stamp(committed)
            log.info("outbox relay recovered", relay=self.relay_id, stamped=len(committed))

    async def _disconnect(self) -> None:
        if self._producer is not None:
            producer, self._producer = self._producer, None
            try:
                await producer.stop()
            except KafkaError as error:
                log.warning("outbox producer did not stop cleanly", error=repr(error))

    async def _last_marker(self) -> list[int]:
        """Outbox ids of this relay's last committed batch, read back from Kafka."""
        consumer = AIOKafkaConsumer(
            **self._kafka.client_options(),
            isolation_level="read_committed",
            enable_auto_commit=False,
            client_id=f"{self.relay_id}-recovery",
        )
        await consumer.start()
        try:
            assert self._producer is not None
            partitions = sorted(await self._producer.partitions_for(PROGRESS_TOPIC))
            key = self.relay_id.encode()
            chosen = DefaultPartitioner()(key, partitions, partitions)
            tp = TopicPartition(PROGRESS_TOPIC, chosen)
            consumer.assign([tp])
            # Fetching only while a window is scanned (see `fetching`): stopped with a fetch
            # just sent, this reader held a starting relay's first publications for 30 s.
            consumer.pause(tp)
            begin = (await consumer.beginning_offsets([tp]))[tp]
            end = (await consumer.end_offsets([tp]))[tp]
            # Read backwards in growing windows: the marker is almost always near the end.
            window = 64
            while end > begin:
                start = max(begin, end - window)
                found = await _last_value_for(consumer, tp, key, start, end)
                if found is not None:
                    return ProgressMarker.model_validate_json(found).ids
                end, window = start, window * 4
            return []
        finally:
            await consumer.stop()

    async def _stand_by(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), self._standby_interval)

    def _on_notify(self, *_: Any) -> None:
        self._wake.set()

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        self._wake.clear()


def _backoff(failures: int) -> float:
    return min(30.0, 0.2 * 2.0**failures)


def _is_open(connection: Connection) -> bool:
    try:
        return not connection.is_closed()
    except InterfaceError:  # asyncpg hands a pooled connection back as it closes
        return False


def _read_outcome(delivery: asyncio.Future[Any]) -> None:
    if not delivery.cancelled():
        delivery.exception()


async def _last_value_for(
    consumer: AIOKafkaConsumer, tp: TopicPartition, key: bytes, start: int, end: int
) -> bytes | None:
    consumer.seek(tp, start)
    found: bytes | None = None
    idle = 0
    with fetching(consumer, tp):
        # Transaction markers and aborted records occupy offsets but are never returned, so
        # progress is judged by position; a few idle polls past the last record end the scan.
        while await consumer.position(tp) < end and idle < 5:
            batch = await consumer.getmany(tp, timeout_ms=500)
            records = batch.get(tp, [])
            idle = 0 if records else idle + 1
            for record in records:
                if record.offset < end and record.key == key:
                    found = record.value
    return found


async def _run_standalone(schema: str, relay_id: str | None) -> None:
    settings = PlatformSettings()
    configure_logging(f"{schema}-outbox-relay", settings)
    pool = await create_pool(settings.database_url, schema, max_size=2)
    relay = OutboxRelay(
        pool,
        schema=schema,
        kafka=settings.kafka,
        relay_id=relay_id,
        keep_processed=settings.dedup_horizon,
    )
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, lambda: asyncio.ensure_future(relay.stop()))
    log.info("outbox relay running", schema=schema, host=socket.gethostname(), pid=os.getpid())
    try:
        await relay.run()
    finally:
        await pool.close()


def main() -> None:
    """Run one schema's relay alone (services run theirs in-process)."""
    parser = argparse.ArgumentParser(prog="python -m shared.outbox", description=main.__doc__)
    parser.add_argument("schema")
    parser.add_argument("--relay-id", default=None)
    arguments = parser.parse_args()
    asyncio.run(_run_standalone(arguments.schema, arguments.relay_id))


if __name__ == "__main__":
    main()
