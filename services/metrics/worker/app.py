"""The metrics worker's Faust app, its settings, and what every domain module shares.

One `App` for the worker; each domain module (listed in `worker.AGENT_MODULES`) declares
its topics, tables and agents on it. Records arrive as raw bytes and are decoded with the
platform's contracts (pydantic at the boundary, since Faust records are not validated);
what cannot be decoded goes to the topic's dead-letter topic with the reason.
"""

from __future__ import annotations

import hashlib
import socket
from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from pathlib import Path
from typing import Any

import faust
from faust import stores
from faust.transport.drivers import aiokafka as faust_kafka
from pydantic import Field

from services.metrics.worker import store
from services.metrics.worker.commits import next_commit
from services.metrics.worker.exits import exit_if_coordination_failed
from shared.envelope import Envelope, Event
from shared.kafka import dead_letter_headers
from shared.logging import get_logger, logging_dict_config
from shared.operational_metrics import (
    CONTENT_TYPE_WITHOUT_CHARSET,
    DEAD_LETTERS,
    PROCESS_READY,
    WORKER_EVENTS,
    WORKER_LAG,
    WORKER_RECOVERING,
    WORKER_ROCKSDB_MEMORY,
    exposition,
    scrape_allowed,
)
from shared.principals import METRICS_WORKER_APP_ID
from shared.registry import UndecodableEvent, decode
from shared.settings import PlatformSettings
from shared.topics import Topic, dead_letter_of, spec

log = get_logger(__name__)


class WorkerSettings(PlatformSettings):
    web_port: int = Field(default=8014, validation_alias="PANJEREH_METRICS_WORKER_PORT")
    flush_interval: float = Field(
        default=1.0,
        gt=0,
        validation_alias="PANJEREH_METRICS_FLUSH_INTERVAL",
        description="Seconds between publications of changed figures (their freshness).",
    )
    session_timeout: float = Field(
        default=30.0,
        ge=6,
        validation_alias="PANJEREH_METRICS_SESSION_TIMEOUT",
        description="Seconds before a silent (crashed) worker's partitions are reassigned.",
    )
    app_id: str = Field(
        default=METRICS_WORKER_APP_ID,
        validation_alias="PANJEREH_METRICS_WORKER_ID",
        description="Consumer group and table namespace; one per independent deployment.",
    )
    data_dir: str = Field(
        default=".data/metrics-worker",
        validation_alias="PANJEREH_METRICS_WORKER_DATA_DIR",
        description="Where Faust keeps its local files, its tables among them (never inside "
        "the source tree). A worker restarted on the same directory replays only what its "
        "tables' changelogs gained since it stopped.",
    )
    standby_replicas: int = Field(
        default=1,
        ge=0,
        validation_alias="PANJEREH_METRICS_WORKER_STANDBY_REPLICAS",
        description="Other workers that keep a copy of each table partition up to date from "
        "its changelog, so that the one taking a partition over from a dead worker has its "
        "table already and replays only the tail. With one worker there is no other: none "
        "is kept.",
    )
    instance_id: str | None = Field(
        default=None,
        validation_alias="PANJEREH_METRICS_WORKER_INSTANCE_ID",
        description="This worker's static member id in its group (Kafka's group.instance.id), "
        "unique among running workers and kept across restarts: a worker started again takes "
        "its partitions back at once, instead of after its old session times out. By default "
        "from the host name and the data directory, which no two running workers share. A "
        "release that subscribes to other topics joins under another id (`member_id`).",
    )

    def member_id(self, subscription: Iterable[str]) -> str:
        """The static member id: `instance_id`, or one derived from where the tables live;
        and a digest of the topics the worker subscribes to.

        Kafka hands a static member that rejoins the assignment it last had, without a
        rebalance. A release with other tables would get topics it does not subscribe to,
        which aiokafka refuses by ending the consumer's group coordination. Under a new id
        it joins as a new member instead, and its old self leaves at its session's end.
        """
        if self.instance_id:
            base = self.instance_id
        else:
            where = hashlib.sha256(str(Path(self.data_dir).resolve()).encode()).hexdigest()[:12]
            base = f"{self.app_id}-{socket.gethostname()}-{where}"
        topics = hashlib.sha256("\n".join(sorted(set(subscription))).encode()).hexdigest()[:8]
        return f"{base}-{topics}"


settings = WorkerSettings()
kafka = settings.kafka
# Faust creates only the last level of its data directory; the platform's may be new.
Path(settings.data_dir).mkdir(parents=True, exist_ok=True)

# Faust finds a table's store by the scheme of its URL (`store=` below).
stores.STORES.aliases["rocksdb-bounded"] = f"{store.__name__}:Store"


class _ReadCommittedConsumerThread(faust_kafka.AIOKafkaConsumerThread):
    """Faust reads `read_committed` only in its exactly_once mode (whose transactional
    producers per partition the worker does not need: its counters guard themselves).
    The services publish through transactional relays, whose aborted records a
    `read_uncommitted` reader would count, and count again when the relay publishes them
    anew; so the worker reads only what committed."""

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # aiokafka hands it to its fetcher at start(), which has not run yet.
        consumer._isolation_level = "read_committed"
        return consumer

    async def on_start(self) -> None:
        await super().on_start()
        coordinator = self._consumer._coordinator  # type: ignore[union-attr]
        coordinator._coordination_task.add_done_callback(exit_if_coordination_failed)


class _Consumer(faust_kafka.Consumer):
    def _new_offset(self, tp: Any) -> int | None:
        """Faust's own merge of acknowledged offsets and gaps stalls on the services'
        transactional topics (`commits.py`)."""
        gaps = self._gap[tp]
        acked = self._acked[tp]
        top = max(acked) if acked else -1
        offset, left = next_commit(
            acked, [(g.begin, g.end) for g in gaps.overlap(0, top + 1)], self._committed_offset[tp]
        )
        if offset is not None:
            gaps.chop(0, offset)
            self._acked_index[tp].difference_update(range(min(acked), offset))
        acked[:] = left
        return offset

    async def _add_gap(self, tp: Any, offset_from: int, offset_to: int) -> None:
        """Record offsets no record was read at, as Faust does, but without merging the
        tree of gaps after each one: Faust rebuilt it whole after every record of a
        transactional topic (each is followed by its marker), an eighth of the worker's
        time while it caught up. `next_commit` takes the gaps as they come."""
        committed = self._committed_offset[tp]
        if committed is not None:
            offset_from = max(offset_from, committed + 1)
        if offset_from <= offset_to:
            self._gap[tp].addi(offset_from, offset_to + 1)  # intervals exclude their end

    def _new_consumer_thread(self) -> faust_kafka.AIOKafkaConsumerThread:
        return _ReadCommittedConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_kafka.Transport):
    Consumer = _Consumer


class _App(faust.App):
    def _new_transport(self) -> Any:
        return _Transport(self.conf.broker_consumer, self)


app = _App(
    settings.app_id,
    broker=f"kafka://{kafka.bootstrap_servers}",
    broker_credentials=None
    if kafka.measuring  # a benchmark's measuring listener (shared/kafka_access.py)
    else faust.SASLCredentials(
        username=kafka.username,
        password=kafka.password,
        ssl_context=kafka.ssl_context(),
        mechanism=kafka.mechanism,
    ),
    # Tables in RocksDB under the data directory (rocksdict), all within one memory budget
    # (store.py). Each partition remembers the changelog offset it holds, so recovery
    # reads only the changelog's tail.
    store="rocksdb-bounded://",
    datadir=settings.data_dir,
    # Counters guard themselves against replays (see counters.py), so at-least-once
    # delivery of committed records (read_committed: `_ReadCommittedConsumerThread`)
    # yields exact counts; offsets are committed only after the changelog is flushed
    # (Faust flushes the producer before every commit).
    processing_guarantee="at_least_once",
    topic_partitions=3,
    topic_replication_factor=settings.durability.replication_factor,
    web_host=settings.http_host,
    web_bind=settings.http_host,
    web_port=settings.web_port,
    consumer_auto_offset_reset="earliest",
    broker_commit_interval=1.0,
    table_standby_replicas=settings.standby_replicas,
    broker_session_timeout=settings.session_timeout,
    broker_heartbeat_interval=min(3.0, settings.session_timeout / 3),
    # Table keys and values are JSON (topics of events override this with raw bytes).
    key_serializer="json",
    value_serializer="json",
    # Faust configures logging itself when the worker starts: hand it the platform's JSON
    # set-up so the worker logs like every other process.
    logging_config=logging_dict_config(settings),
)


#: Changelog topics made otherwise than compacted for ever: {topic: (partitions, config)}.
BOUNDED_CHANGELOGS: dict[str, tuple[int, dict[str, str]]] = {}


def table(name: str, *, forget_after: timedelta | None = None, **kwargs: Any) -> Any:
    """A table of the worker, kept in RocksDB with the worker's sizes.

    `forget_after`: a key written longer ago than that is forgotten, both in the store
    (RocksDB's time to live, applied as it compacts) and in the changelog (deleted as well
    as compacted, with that retention), so the table holds what that time brought, not
    everything ever.
    """
    # A fresh dict each time: the store takes its entries out of the one it is given.
    options: dict[str, Any] = dict(store.DATABASE_OPTIONS)
    if forget_after is not None:
        options["ttl"] = int(forget_after.total_seconds())
    created = app.Table(name, options=options, **kwargs)
    if forget_after is not None:
        BOUNDED_CHANGELOGS[created.changelog_topic.get_topic_name()] = (
            kwargs["partitions"],
            {
                "cleanup.policy": "compact,delete",
                "retention.ms": str(int(forget_after.total_seconds() * 1000)),
            },
        )
    return created


def source_topic(topic: Topic) -> Any:
    """A Faust topic of raw bytes, for records decoded with the platform's contracts."""
    return app.topic(
        topic.value, key_serializer="raw", value_serializer="raw", partitions=spec(topic).partitions
    )


def subscription() -> set[str]:
    """The topics the worker's consumer subscribes to, as its code declares them: its
    agents' topics and its tables' changelogs (once every agent module is loaded)."""
    topics = {name for agent in app.agents.values() for name in agent.channel.topics}
    return topics | {table.changelog_topic.get_topic_name() for table in app.tables.values()}


def tables_recovered() -> bool:
    """Whether the worker's tables are recovered, so what they hold may be published."""
    recovery = getattr(app.tables, "recovery")  # noqa: B009  (not in Faust's type stubs)
    return not app.in_recovery and bool(recovery.completed.is_set())


def partitions_of(topic: Topic) -> int:
    return spec(topic).partitions


async def dead_letter(event: Any, reason: str) -> None:
    """Send the record, as it came, to its topic's dead-letter topic with the reason."""
    message = event.message
    headers = dead_letter_headers(
        message.headers,
        reason=reason,
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        consumer=app.conf.id,
        original_timestamp_ms=round(message.timestamp * 1000) if message.timestamp else None,
    )
    await app.producer.send_and_wait(
        dead_letter_of(message.topic),
        message.key,
        event.value or b"",
        partition=None,
        timestamp=None,
        headers=headers,
    )
    DEAD_LETTERS.labels(message.topic, "undecodable").inc()
    log.warning("event dead-lettered", reason=reason, topic=message.topic)


#: Something else that counts or keeps state from each event of a topic, in the same
#: pass: called with the event's envelope and its record, inside the topic's agent. One
#: agent reads each topic, so a record is decoded, and dead-lettered if it must be, once.
Follower = Callable[[Envelope[Any], Any], None]


async def decoded(event: Any) -> Envelope[Event] | None:
    """The record's envelope, or None after dead-lettering what cannot be decoded."""
    WORKER_EVENTS.labels(event.message.topic).inc()
    try:
        return decode(event.value, event.message.topic)
    except UndecodableEvent as error:
        await dead_letter(event, error.reason)
        return None


@app.page("/health")
async def health(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
    return web.json({"service": "metrics-worker", "status": "ok"})


_SOURCE_TOPICS = frozenset(topic.value for topic in Topic)
#: The (topic, partition) pairs the lag gauge has a value for.
_lag_labels: set[tuple[str, str]] = set()


async def read_worker_state() -> None:
    """At a scrape: the lag of each partition of the platform's topics the worker holds
    (its tables' changelogs are not committed, so they have none), and whether it is
    restoring its tables."""
    recovering = bool(app.in_recovery)
    WORKER_RECOVERING.set(1 if recovering else 0)
    WORKER_ROCKSDB_MEMORY.set(store.memory_in_use())
    PROCESS_READY.set(0 if recovering else 1)
    held = [tp for tp in app.consumer.assignment() if tp.topic in _SOURCE_TOPICS]
    # A partition a rebalance took away is another worker's lag now, not this one's.
    now_held = {(tp.topic, str(tp.partition)) for tp in held}
    for labels in _lag_labels - now_held:
        WORKER_LAG.remove(*labels)
    _lag_labels.intersection_update(now_held)
    if not held:
        return
    ends = await app.consumer.highwaters(*held)
    # Faust's own record of what it committed: the next offset to read.
    committed: Mapping[Any, int | None] = app.consumer._committed_offset  # type: ignore[attr-defined]
    for tp in held:
        if (position := committed.get(tp)) is not None and ends.get(tp) is not None:
            WORKER_LAG.labels(tp.topic, str(tp.partition)).set(max(0, ends[tp] - position))
            _lag_labels.add((tp.topic, str(tp.partition)))


@app.page("/metrics")
async def metrics(web: faust.web.View, request: faust.web.Request) -> faust.web.Response:
    allowed = scrape_allowed(
        request.headers.get("authorization"),
        settings.metrics_token.get_secret_value(),
        open_without_token=settings.environment != "production",
    )
    if not allowed:
        return web.json(
            {"code": "unauthenticated", "detail": "a scrape needs PANJEREH_METRICS_TOKEN"},
            status=401,
            headers={"WWW-Authenticate": "Bearer"},
        )
    body = await exposition([("worker-state", read_worker_state)])
    return web.bytes(body, content_type=CONTENT_TYPE_WITHOUT_CHARSET)
