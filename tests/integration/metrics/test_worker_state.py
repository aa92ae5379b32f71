"""A restarted worker counts on from its own tables, not by replaying its changelogs."""

from __future__ import annotations

import asyncio

from aiokafka import AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, RecordsToDelete
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared.kafka import partitions_of, publish
from shared.kafka_access import KafkaAccess
from shared.topics import Topic
from tests.integration.metrics import events
from tests.integration.metrics.worker_process import WorkerProcess, wait_for_values

N_DELIVERIES = 120
# The tables a delivery is counted in and remembered by (`worker/deliveries.py`).
DELIVERY_TABLES = ("delivery-counters", "delivery-events")


async def _forget_history(kafka: KafkaAccess, topics: list[str]) -> None:
    """Delete every record the topics hold (compacted topics must allow deletion first)."""
    admin = AIOKafkaAdminClient(**kafka.client_options())
    await admin.start()
    try:
        await admin.alter_configs(
            [
                ConfigResource(
                    ConfigResourceType.TOPIC, topic, configs={"cleanup.policy": "compact,delete"}
                )
                for topic in topics
            ]
        )
        await asyncio.sleep(1)  # the broker applies a topic's new config a moment later
        everything = {
            TopicPartition(topic, partition): RecordsToDelete(-1)  # -1: to the high watermark
            for topic in topics
            for partition in await partitions_of(kafka, topic)
        }
        await admin.delete_records(everything, timeout_ms=30000)
    finally:
        await admin.close()


async def test_a_restarted_worker_counts_on_from_its_own_tables_without_their_changelogs(
    kafka_admin: KafkaAccess, producer: AIOKafkaProducer, worker: WorkerProcess
) -> None:
    agency = events.unique_agency("state")
    key = f"deliveries.count|agency={agency}|all_time:all"
    topic = Topic.METRICS_DELIVERIES.value
    await asyncio.gather(*(publish(producer, events.delivery(agency)) for _ in range(N_DELIVERIES)))
    counted = await wait_for_values(kafka_admin, topic, {key: float(N_DELIVERIES)}, timeout=120)
    assert counted == {key: float(N_DELIVERIES)}, worker.log_text()[-3000:]

    worker.kill()
    # Only the worker's own store now knows what it counted: its changelogs hold nothing.
    # A worker that rebuilt its tables from them would count from zero again.
    await _forget_history(
        kafka_admin, [f"{worker.app_id}-{table}-changelog" for table in DELIVERY_TABLES]
    )
    await publish(producer, events.delivery(agency))
    worker.start()

    counted = await wait_for_values(kafka_admin, topic, {key: float(N_DELIVERIES + 1)}, timeout=120)
    assert counted == {key: float(N_DELIVERIES + 1)}, worker.log_text()[-3000:]
