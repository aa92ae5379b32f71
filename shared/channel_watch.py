"""Finding agencies' new channels the moment the access manager opens them.

A consumer that reads a family of channels subscribes by pattern, and a client learns
which topics match only from the broker's metadata: of every topic it may describe,
more than a thousand with a national register of agencies. Asked every few seconds, that
answer took 11 to 32 ms of the event loop each time, which was the exchange's round
trip's worst tail at low load. So the consumer asks rarely (`METADATA_REFRESH_MS`, a
safety net), and at once whenever `platform.channels` announces that channels were
opened.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from shared.events.platform import ChannelsOpened
from shared.kafka_access import KafkaAccess
from shared.logging import get_logger
from shared.registry import UndecodableEvent, decode
from shared.topics import Topic

log = get_logger(__name__)

#: How often a pattern consumer refreshes metadata without being told: only a lost
#: announcement waits this long (the access manager stopped between opening the channels
#: and saying so; it announces every agency again when it starts).
METADATA_REFRESH_MS = 60_000

Refuse = Callable[[ConsumerRecord[bytes, bytes], str], Awaitable[None]]


def refresh_metadata(consumer: AIOKafkaConsumer) -> None:
    """Have `consumer` ask the broker for metadata now (in the background).

    A pattern subscription matches the answer's topics, and a new match makes the group
    rebalance onto it. A refresh that fails is retried by the client on its own.
    """
    update = consumer._client.force_metadata_update()
    update.add_done_callback(lambda done: done.cancelled() or done.exception())


class ChannelWatch:
    """Follows `platform.channels` and calls `opened` on each announcement.

    Read without a group, from the end as of `start()`: every instance refreshes its own
    consumer, and what was opened before it started is in the metadata its consumer
    fetches when it starts after. A record that is no announcement goes to `refuse`.
    """

    def __init__(self, kafka: KafkaAccess, *, opened: Callable[[], None], refuse: Refuse) -> None:
        self._kafka = kafka
        self._opened = opened
        self._refuse = refuse
        self._consumer: AIOKafkaConsumer | None = None
        self._partition = TopicPartition(Topic.PLATFORM_CHANNELS, 0)

    async def start(self) -> None:
        """Fix the position at the topic's end now, before the consumer being watched for
        fetches its first metadata: nothing announced in between is missed."""
        self._consumer = AIOKafkaConsumer(
            **self._kafka.client_options(),
            enable_auto_commit=False,
            client_id=f"channel-watch-{uuid.uuid4().hex[:8]}",
        )
        await self._consumer.start()
        self._consumer.assign([self._partition])
        await self._consumer.seek_to_end(self._partition)
        await self._consumer.position(self._partition)

    async def run(self, stopping: asyncio.Event) -> None:
        assert self._consumer is not None, "start() first"
        while not stopping.is_set():
            batch = await self._consumer.getmany(self._partition, timeout_ms=500)
            for record in batch.get(self._partition, []):
                await self._take(record)

    async def _take(self, record: ConsumerRecord[bytes, bytes]) -> None:
        try:
            payload = decode(record.value, record.topic).payload
        except UndecodableEvent as error:
            await self._refuse(record, error.reason)
            return
        if isinstance(payload, ChannelsOpened):
            log.info("channels opened, refreshing metadata", agencies=len(payload.agencies))
            self._opened()

    async def stop(self) -> None:
        if self._consumer is not None:
            with contextlib.suppress(Exception):
                await self._consumer.stop()
