"""A release of the worker whose tables differ takes over from the older release's worker
on the same data directory, which was killed: Kafka still counts the older one a member
of the group until its session ends, with the older subscription.

The failure that made the member id carry a digest of the subscription (`app.py`:
`member_id`), Kafka handing the rejoining static member the older release's assignment,
came after a broker restart, which this test does not do: here Kafka rebalances, with the
digest or without. The test holds the upgrade as a whole, not that digest."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from aiokafka import AIOKafkaProducer

from shared.kafka import publish
from shared.kafka_access import KafkaAccess
from shared.topics import Topic
from tests.integration.metrics import events
from tests.integration.metrics.worker_process import WorkerProcess, wait_for_values

#: Kafka's shortest the worker accepts: the killed worker leaves the group sooner.
SHORT_SESSION = {"PANJEREH_METRICS_SESSION_TIMEOUT": "6"}
BEFORE, AFTER = 4, 6


async def test_a_release_with_other_tables_takes_over_from_a_killed_older_release(
    kafka_admin: KafkaAccess,
    kafka_as: Callable[[str], KafkaAccess],
    producer: AIOKafkaProducer,
    worker_logs: Path,
) -> None:
    kafka = kafka_as("metrics-worker")
    older = WorkerProcess(kafka, worker_logs, module="tests.integration.metrics.older_release")
    # The same app id and data directory: the same host's worker, upgraded.
    newer = WorkerProcess(kafka, worker_logs, app_id=older.app_id)
    agency = events.unique_agency("upgrade")
    key = f"deliveries.count|agency={agency}|all_time:all"
    topic = Topic.METRICS_DELIVERIES.value
    try:
        older.start(environment=SHORT_SESSION)
        for _ in range(BEFORE):
            await publish(producer, events.delivery(agency))
        counted = await wait_for_values(kafka_admin, topic, {key: float(BEFORE)})
        assert counted == {key: float(BEFORE)}, older.log_text()[-3000:]
        older.kill()

        newer.start(environment=SHORT_SESSION)
        for _ in range(AFTER - BEFORE):
            await publish(producer, events.delivery(agency))
        counted = await wait_for_values(kafka_admin, topic, {key: float(AFTER)})
        assert counted == {key: float(AFTER)}, newer.log_text()[-3000:]
        assert newer.process is not None
        assert newer.process.poll() is None, newer.log_text()[-3000:]
    finally:
        older.stop()
        newer.stop()
