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

import pytest
from aiokafka import AIOKafkaProducer

from shared.kafka import publish
from shared.kafka_access import KafkaAccess
from shared.topics import Topic
from tests.integration.metrics import events
from tests.integration.metrics.worker_process import WorkerProcess, wait_for_values

#: Shorter than the worker's own, so that the killed worker leaves the group sooner; not
#: Kafka's shortest (6 s), too thin a margin for a live worker's heartbeats on a busy
#: machine (a worker that misses them leaves the group and rebalances it).
SHORT_SESSION = {"PANJEREH_METRICS_SESSION_TIMEOUT": "10"}
BEFORE, AFTER = 4, 6
#: Each wait's bound, and the test's: never reached on a quiet machine (the whole test
#: takes seconds there), but a busy one was four times slower.
WAIT = 150.0
pytestmark = pytest.mark.timeout(2 * WAIT + 120)


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
        counted = await wait_for_values(kafka_admin, topic, {key: float(BEFORE)}, timeout=WAIT)
        assert counted == {key: float(BEFORE)}, joins_and_tail(older)
        older.kill()

        newer.start(environment=SHORT_SESSION)
        for _ in range(AFTER - BEFORE):
            await publish(producer, events.delivery(agency))
        counted = await wait_for_values(kafka_admin, topic, {key: float(AFTER)}, timeout=WAIT)
        assert counted == {key: float(AFTER)}, joins_and_tail(newer)
        assert newer.process is not None
        assert newer.process.poll() is None, newer.log_text()[-3000:]
    finally:
        older.stop()
        newer.stop()


def joins_and_tail(worker: WorkerProcess) -> str:
    """How often the worker joined its group (a rebalance each), and the end of its log."""
    log = worker.log_text()
    return f"joined its group {log.count('Joined group')} times; log ends:\n{log[-3000:]}"
