"""Reading an agency's own channel: a consumer group, so nothing sent while it was down
is lost, and only what the exchange signed is handed on.

Each record is decoded with the platform's contracts and its signature checked against
the exchange's keys. What fails either goes to the channel's dead-letter topic (which the
agency itself may read) with the reason, and is never handed to the agency's code.
Offsets are committed after the batch was handled (while the next is read), so a crash
means seeing a record again, never missing one. For the same reason neither a lost broker
nor a rebalance ends the reader: it reconnects (backing off) and carries on from the
group's committed offsets, and a commit a rebalance refused only means the batch comes
again, to whichever member now holds its partition. An agency's code therefore takes an
event at least once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    SaslAuthenticationFailed,
    TopicAuthorizationFailedError,
)

from panjereh_agency.exchange_keys import ExchangeKeys
from shared.envelope import Event
from shared.kafka import (
    DeadLettered,
    RetryPolicy,
    commit_what_is_held,
    dead_letter,
    new_producer,
    reconnecting,
)
from shared.kafka_access import KafkaAccess
from shared.logging import get_logger
from shared.principals import agency_principal
from shared.registry import UndecodableEvent, decode
from shared.signing import SignatureInvalid
from shared.topics import channel

log = get_logger(__name__)

Take = Callable[[Event], Awaitable[None]]

#: How long a reader waits before reconnecting to a broker it lost (grows per attempt).
_RECONNECT = RetryPolicy(first_delay=0.5, max_delay=15.0)
#: The broker's refusals of these credentials: waiting does not change them, so the
#: agency's system hears of them at once instead of a reader retrying for ever.
_REFUSALS = (
    AuthenticationFailedError,
    AuthenticationMethodNotSupported,
    SaslAuthenticationFailed,
    ClusterAuthorizationFailedError,
    GroupAuthorizationFailedError,
    TopicAuthorizationFailedError,
)


class ChannelReader:
    """Reads `family`'s topic of `agency` in the group `agency-<code>-<role>`.

    Contract: `run(take)` blocks until `stop()`; `take` gets each verified event at least
    once, one batch at a time, and may block. A lost broker is waited out; credentials the
    broker refuses end `run` with its error. `ready` is set once the group holds the
    partitions.
    """

    def __init__(
        self, kafka: KafkaAccess, agency: str, family: str, role: str, keys: ExchangeKeys
    ) -> None:
        self.agency = agency
        self.topic = channel(family, agency)
        self._kafka = kafka
        self._group = f"{agency_principal(agency)}-{role}"
        self._keys = keys
        self._stopping = asyncio.Event()
        self.ready = asyncio.Event()
        self.refused = 0
        """Records dead-lettered (a record refused again after a rebalance counts once)."""
        self.commits_refused = 0
        """Batches whose commit a rebalance refused (they are delivered again)."""
        self._dead_lettered = DeadLettered()
        self._consumer: AIOKafkaConsumer | None = None

    async def run(self, take: Take) -> None:
        await reconnecting(
            lambda: self._read(take), self._stopping, _RECONNECT, fatal=_REFUSALS, topic=self.topic
        )

    async def _read(self, take: Take) -> None:
        consumer = AIOKafkaConsumer(
            self.topic,
            **self._kafka.client_options(),
            group_id=self._group,
            client_id=self._group,
            enable_auto_commit=False,
            # A new deployment starts from what is kept: nothing sent to it is skipped.
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        self._consumer = consumer
        dead_letters = new_producer(self._kafka, client_id=f"{self._group}-dlq")
        # The commit of one batch runs while the next is read and handled: waiting for it
        # would hold every record that arrives meanwhile for a round trip to the group
        # coordinator. One commit at a time, in order, so offsets never go back.
        committing: asyncio.Task[None] | None = None
        try:
            await dead_letters.start()
            await consumer.start()
            while not self._stopping.is_set():
                batches = await consumer.getmany(timeout_ms=200, max_records=500)
                if not self.ready.is_set() and consumer.assignment():
                    for tp in consumer.assignment():
                        await consumer.position(tp)
                    self.ready.set()
                events = []
                for records in batches.values():
                    for record in records:
                        event = await self._checked(record, dead_letters)
                        if event is not None:
                            events.append(event)
                if events:
                    await asyncio.gather(*(take(event) for event in events))
                if batches:
                    offsets = {tp: records[-1].offset + 1 for tp, records in batches.items()}
                    if committing is not None:
                        await committing
                    committing = asyncio.create_task(self._commit(consumer, offsets))
        finally:
            if committing is not None:
                with contextlib.suppress(Exception):
                    await committing
            with contextlib.suppress(Exception):
                await consumer.stop()
            with contextlib.suppress(Exception):
                await dead_letters.stop()

    async def stop(self) -> None:
        self._stopping.set()

    async def _commit(self, consumer: AIOKafkaConsumer, offsets: dict[TopicPartition, int]) -> None:
        if not await commit_what_is_held(consumer, offsets):
            self.commits_refused += 1

    async def _checked(
        self, record: ConsumerRecord[bytes, bytes], dead_letters: AIOKafkaProducer
    ) -> Event | None:
        try:
            envelope = decode(record.value, record.topic)
            await self._keys.verify(envelope.payload)
        except (UndecodableEvent, SignatureInvalid) as error:
            reason = getattr(error, "reason", None) or f"not signed by the exchange: {error}"
            await self._refuse(record, reason, dead_letters)
            return None
        return envelope.payload

    async def _refuse(
        self, record: ConsumerRecord[bytes, bytes], reason: str, dead_letters: AIOKafkaProducer
    ) -> None:
        if record in self._dead_lettered:
            # Delivered again (a rebalance put the partition back): its letter is sent.
            return
        log.warning("record refused", topic=record.topic, offset=record.offset, reason=reason)
        await dead_letter(dead_letters, record, reason, self._group)
        self._dead_lettered.add(record)
        self.refused += 1
