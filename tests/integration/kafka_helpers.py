"""Reading what really landed on the broker, for assertions."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from shared.kafka import partitions_of
from shared.kafka_access import KafkaAccess


async def read_all(
    kafka: KafkaAccess,
    topic: str,
    *,
    until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool] = lambda records: True,
    timeout: float = 30.0,
    isolation_level: str = "read_committed",
) -> list[ConsumerRecord[bytes, bytes]]:
    """Every record of `topic` from the beginning to its end, as a reader sees it.

    Keeps reading (new records may still arrive) until `until(records)` holds after
    reaching the end, or `timeout` passes; returns what it has either way.
    """
    consumer = AIOKafkaConsumer(
        **kafka.client_options(),
        isolation_level=isolation_level,
        enable_auto_commit=False,
        client_id=f"test-reader-{uuid.uuid4().hex[:8]}",
    )
    await consumer.start()
    try:
        partitions = await partitions_of(kafka, topic)
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord[bytes, bytes]] = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while loop.time() < deadline:
            batch = await consumer.getmany(*tps, timeout_ms=300)
            for part in batch.values():
                records.extend(part)
            if not batch:
                ends = await consumer.end_offsets(tps)
                at_end = all([await consumer.position(tp) >= ends[tp] for tp in tps])
                if at_end and until(records):
                    break
        return records
    finally:
        await consumer.stop()


def header(record: ConsumerRecord[bytes, bytes], name: str) -> str | None:
    for key, value in record.headers:
        if key == name:
            text: str = value.decode()
            return text
    return None
