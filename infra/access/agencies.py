"""What the catalog says of agencies, as the access manager needs it: code → active."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterable
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.events.catalog import AgencyRecorded
from shared.kafka import fetching
from shared.kafka_access import KafkaAccess
from shared.logging import get_logger
from shared.registry import UndecodableEvent, decode
from shared.topics import Topic, spec

log = get_logger(__name__)


def take(agencies: dict[str, bool], records: Iterable[Any]) -> bool:
    """Fold records of `catalog.agencies` into `agencies`; whether anything changed."""
    changed = False
    for record in records:
        try:
            payload = decode(record.value, Topic.CATALOG_AGENCIES).payload
        except UndecodableEvent as error:
            log.warning("unreadable agency record skipped", reason=error.reason)
            continue
        if isinstance(payload, AgencyRecorded) and agencies.get(payload.code) != payload.active:
            agencies[payload.code] = payload.active
            changed = True
    return changed


async def agency_consumer(admin: KafkaAccess) -> tuple[AIOKafkaConsumer, list[TopicPartition]]:
    """A started consumer at the start of every partition of `catalog.agencies`."""
    consumer = AIOKafkaConsumer(
        **admin.client_options(),
        isolation_level="read_committed",
        enable_auto_commit=False,
        client_id=f"access-manager-{uuid.uuid4().hex[:6]}",
    )
    await consumer.start()
    topic = Topic.CATALOG_AGENCIES.value
    # The register declares its partitions; `panjereh init` made the topic so.
    tps = [TopicPartition(topic, p) for p in range(spec(topic).partitions)]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    return consumer, tps


async def read_agencies(admin: KafkaAccess, within: float = 60.0) -> dict[str, bool]:
    """Every agency the catalog has recorded, as of now (the topic read to its end)."""
    await asyncio.to_thread(_until_readable, admin, within)
    consumer, tps = await agency_consumer(admin)
    # Read once and stopped: paused outside the reading, so that no fetch is going out as
    # it stops (which could hold `init` for the 30 s of a TLS shutdown; see `fetching`).
    consumer.pause(*tps)
    agencies: dict[str, bool] = {}
    try:
        ends = await consumer.end_offsets(tps)
        with fetching(consumer, *tps):
            while any([await consumer.position(tp) < ends[tp] for tp in tps]):
                batch = await consumer.getmany(*tps, timeout_ms=500)
                for records in batch.values():
                    take(agencies, records)
    finally:
        await consumer.stop()
    return agencies


def _until_readable(admin: KafkaAccess, within: float) -> None:
    """Wait, quietly, until every partition of `catalog.agencies` answers for its offsets.

    Right after a broker (re)starts its partitions answer "not the leader" for a moment,
    which aiokafka's fetcher would log as an error on each retry; librdkafka asks here.
    """
    from confluent_kafka import Consumer, KafkaException
    from confluent_kafka import TopicPartition as Partition

    config: dict[str, str | int | float | bool] = dict(admin.librdkafka_config())
    config |= {"group.id": f"access-manager-{uuid.uuid4().hex[:6]}", "log_level": 0}
    consumer = Consumer(config)
    topic = Topic.CATALOG_AGENCIES.value
    deadline = time.monotonic() + within
    try:
        for partition in range(spec(topic).partitions):
            while True:
                try:
                    consumer.get_watermark_offsets(Partition(topic, partition), timeout=5)
                    break
                except KafkaException:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.3)
    finally:
        consumer.close()
