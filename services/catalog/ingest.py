"""The consumer of `catalog.delivery-reports`: decode a batch, hand it over, commit.

Deliveries arrive at volume, so this consumer applies a batch of records per transaction
instead of one (`handlers.record_deliveries`). Its contract is the platform consumer's
(`shared.kafka.EventConsumer`): offsets are committed only after the batch's transaction
committed and its refusals are safe on the dead-letter topic; records that cannot be
decoded and reports the register refuses go to `catalog.delivery-reports.dlq` with the
reason and the original bytes; failures of the infrastructure are retried without limit.
A redelivered batch changes nothing: recorded reports are deduplicated by report id.
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Any, TypeAlias

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, KafkaError
from opentelemetry.context import Context

from services.catalog.handlers import record_deliveries
from shared.db import Pool
from shared.envelope import Envelope
from shared.kafka import TRANSIENT_ERRORS, RetryPolicy, dead_letter_headers, new_producer
from shared.logging import get_logger
from shared.registry import UndecodableEvent, decode
from shared.runtime import Runtime
from shared.topics import Topic, dead_letter_of
from shared.tracing import context_from

log = get_logger(__name__)

TOPIC = Topic.CATALOG_DELIVERY_REPORTS
GROUP = "catalog"

Record: TypeAlias = "ConsumerRecord[bytes, bytes]"


class DeliveryIngestor:
    """Consumes delivery reports in the `catalog` group until `stop()`."""

    def __init__(
        self,
        pool: Pool,
        bootstrap_servers: str,
        *,
        max_records: int = 1000,
        retry: RetryPolicy | None = None,
    ) -> None:
        self._pool = pool
        self._bootstrap = bootstrap_servers
        self._max_records = max_records
        self._retry = retry or RetryPolicy()
        self._stopping = asyncio.Event()
        self._consumer: AIOKafkaConsumer | None = None
        self._dead_letters: AIOKafkaProducer | None = None
        self.handled = 0
        self.dead_lettered = 0

    async def run(self) -> None:
        self._consumer = AIOKafkaConsumer(
            TOPIC.value,
            bootstrap_servers=self._bootstrap,
            group_id=GROUP,
            client_id=f"{GROUP}-deliveries",
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            isolation_level="read_committed",
        )
        self._dead_letters = new_producer(self._bootstrap, client_id=f"{GROUP}-dlq")
        await self._dead_letters.start()
        await self._consumer.start()
        try:
            while not self._stopping.is_set():
                batches = await self._consumer.getmany(
                    timeout_ms=500, max_records=self._max_records
                )
                for tp, records in batches.items():
                    await self._process(records)
                    await self._commit(tp, records[-1].offset + 1)
        finally:
            await self._consumer.stop()
            await self._dead_letters.stop()

    async def stop(self) -> None:
        """Finish the batch in hand, commit it, and return from `run()`."""
        self._stopping.set()

    async def _process(self, records: list[Record]) -> None:
        decoded: list[tuple[Record, Envelope[Any]]] = []
        for record in records:
            try:
                decoded.append((record, decode(record.value, record.topic)))
            except UndecodableEvent as error:
                await self._dead_letter(record, error.reason)
        by_id = {id(envelope): record for record, envelope in decoded}
        # Each recorded delivery continues the trace of the report that caused it.
        parents = {envelope.id: context_from(record.headers) for record, envelope in decoded}
        refused = await self._apply([envelope for _, envelope in decoded], parents)
        for envelope, problem in refused:
            await self._dead_letter(by_id[id(envelope)], str(problem))
        self.handled += len(decoded) - len(refused)

    async def _apply(
        self, envelopes: list[Envelope[Any]], parents: dict[uuid.UUID, Context]
    ) -> list[tuple[Envelope[Any], Any]]:
        failures = 0
        while True:
            try:
                async with self._pool.acquire() as connection, connection.transaction():
                    return list(await record_deliveries(envelopes, connection, parents=parents))
            except TRANSIENT_ERRORS as error:
                failures += 1
                log.warning("transient failure, retrying", error=repr(error), attempt=failures)
            except Exception as error:
                failures += 1
                if failures >= self._retry.attempts:
                    return await self._one_by_one(envelopes, parents, error)
                log.warning("batch failed, retrying", error=repr(error), attempt=failures)
            await asyncio.sleep(self._retry.delay(failures))

    async def _one_by_one(
        self,
        envelopes: list[Envelope[Any]],
        parents: dict[uuid.UUID, Context],
        cause: Exception,
    ) -> list[tuple[Envelope[Any], Any]]:
        """A batch that keeps failing: each report alone, so one bad report fails alone."""
        log.warning("batch keeps failing; applying its reports one by one", error=repr(cause))
        refused: list[tuple[Envelope[Any], Any]] = []
        for envelope in envelopes:
            try:
                refused += await self._apply_single(envelope, parents)
            except Exception as error:
                if isinstance(error, TRANSIENT_ERRORS):
                    raise
                refused.append((envelope, f"handler failed: {error!r}"))
        return refused

    async def _apply_single(
        self, envelope: Envelope[Any], parents: dict[uuid.UUID, Context]
    ) -> list[tuple[Envelope[Any], Any]]:
        async with self._pool.acquire() as connection, connection.transaction():
            return list(await record_deliveries([envelope], connection, parents=parents))

    async def _commit(self, tp: TopicPartition, next_offset: int) -> None:
        assert self._consumer is not None
        try:
            await self._consumer.commit({tp: next_offset})
        except CommitFailedError:
            # The partition moved to another member; it redelivers, which changes nothing.
            log.warning("commit refused after a rebalance", partition=tp.partition)

    async def _dead_letter(self, record: Record, reason: str) -> None:
        assert self._dead_letters is not None
        target = dead_letter_of(record.topic)
        headers = dead_letter_headers(
            record.headers,
            reason=reason,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            consumer=GROUP,
        )
        attempt = 0
        while True:
            try:
                await self._dead_letters.send_and_wait(
                    target, record.value or b"", key=record.key, headers=headers
                )
                break
            except KafkaError as error:
                # The record must not be committed before it is safe on the DLQ.
                attempt += 1
                log.warning("dead-letter publish failed, retrying", error=repr(error))
                await asyncio.sleep(self._retry.delay(attempt))
        self.dead_lettered += 1
        log.warning("delivery report dead-lettered", reason=reason, dead_letter_topic=target)


async def ingest_deliveries(runtime: Runtime) -> None:
    """The runtime's background task: consume delivery reports until cancelled."""
    ingestor = DeliveryIngestor(runtime.pool, runtime.settings.kafka_bootstrap_servers)
    task = asyncio.create_task(ingestor.run())
    try:
        await asyncio.shield(task)
    finally:
        await ingestor.stop()
        await asyncio.wait({task}, timeout=10)
