"""The consumer of transaction topics: one database transaction per poll, not per event.

A transaction costs the exchange a few statements whatever the batch size, so under load
it takes the events of a poll together (`handlers.handle_batch`). Decoding and the
dead-letter rules are the platform's consumer's; if a batch fails, its events are handled
one by one by the per-event handlers, with their retries and dead-lettering. Offsets are
committed only after the batch (or each of its events) is done.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, ConsumerRecord

from shared.envelope import Envelope
from shared.kafka import EventConsumer, Handler, new_producer
from shared.logging import get_logger
from shared.registry import UndecodableEvent, decode
from shared.topics import Topic

log = get_logger(__name__)

BatchHandler = Callable[[Sequence[Envelope[Any]]], Awaitable[None]]


class BatchingConsumer(EventConsumer):
    """An `EventConsumer` that hands each partition's poll to `batch` at once.

    Contract as `EventConsumer`; `handler` is the per-event fallback.
    """

    def __init__(
        self,
        *,
        group: str,
        topics: Sequence[Topic],
        batch: BatchHandler,
        handler: Handler,
        bootstrap_servers: str,
        max_records: int = 200,
    ) -> None:
        super().__init__(
            group=group,
            topics=topics,
            handler=handler,
            bootstrap_servers=bootstrap_servers,
            max_records=max_records,
        )
        self._batch = batch

    async def run(self) -> None:
        self._consumer = AIOKafkaConsumer(
            *self._topics,
            bootstrap_servers=self._bootstrap,
            group_id=self.group,
            client_id=self.group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        self._dead_letters = new_producer(self._bootstrap, client_id=f"{self.group}-dlq")
        await self._dead_letters.start()
        await self._consumer.start()
        try:
            while not self._stopping.is_set():
                batches = await self._consumer.getmany(
                    timeout_ms=500, max_records=self._max_records
                )
                for tp, records in batches.items():
                    await self._process_all(records)
                    await self._commit(tp, records[-1].offset + 1)
        finally:
            await self._consumer.stop()
            await self._dead_letters.stop()

    async def _process_all(self, records: list[ConsumerRecord[bytes, bytes]]) -> None:
        decoded: list[tuple[ConsumerRecord[bytes, bytes], Envelope[Any]]] = []
        for record in records:
            try:
                decoded.append((record, decode(record.value, record.topic)))
            except UndecodableEvent as error:
                await self._dead_letter(record, error.reason)
        if not decoded:
            return
        try:
            await self._batch([envelope for _, envelope in decoded])
            self.handled += len(decoded)
        except Exception as error:  # whatever failed, the per-event path decides each event
            log.warning("batch failed; handling its events one by one", error=repr(error))
            for record, envelope in decoded:
                await self._handle(record, envelope)
