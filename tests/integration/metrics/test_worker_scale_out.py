"""Two workers in one group each count a share of the partitions, and the figures they
publish are whole: summed over every partition, not one worker's share (`worker/mirror.py`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import httpx
from aiokafka import AIOKafkaProducer
from aiokafka.partitioner import DefaultPartitioner
from prometheus_client.parser import text_string_to_metric_families

from shared.kafka import publish
from shared.kafka_access import KafkaAccess
from shared.topics import Topic, spec
from tests.integration.metrics import events
from tests.integration.metrics.worker_process import (
    WorkerProcess,
    latest_figures,
    wait_for_values,
)

N_DELIVERIES = 90
#: Services, so that the deliveries (keyed by service) land on every partition.
N_SERVICES = 30
# No standby copies: each worker then has only its own share of the counters, so a whole
# figure can only come from adding up both workers' shares.
WITHOUT_STANDBYS = {"PANJEREH_METRICS_WORKER_STANDBY_REPLICAS": "0"}


def _samples(worker: WorkerProcess, name: str) -> list[tuple[dict[str, str], float]]:
    try:
        text = httpx.get(f"{worker.url}/metrics", timeout=5).text
    except httpx.HTTPError:
        return []
    return [
        (sample.labels, sample.value)
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    ]


def _held_partitions(worker: WorkerProcess, topic: Topic) -> set[str]:
    """The partitions of `topic` the worker holds and has committed on (it has a lag gauge
    for each)."""
    return {
        labels["partition"]
        for labels, _ in _samples(worker, "panjereh_worker_lag_records")
        if labels.get("topic") == topic.value
    }


def _partition_of(key: str) -> str:
    """The partition of `catalog.deliveries` a record keyed `key` goes to (Kafka's default
    partitioner, as the producer uses it)."""
    partitions = list(range(spec(Topic.CATALOG_DELIVERIES).partitions))
    return str(DefaultPartitioner()(key.encode(), partitions, partitions))


async def test_two_workers_sharing_the_partitions_publish_whole_figures(
    kafka_admin: KafkaAccess,
    kafka_as: Callable[[str], KafkaAccess],
    producer: AIOKafkaProducer,
    worker_logs: Path,
) -> None:
    kafka = kafka_as("metrics-worker")
    first = WorkerProcess(kafka, worker_logs, instance="first")
    second = WorkerProcess(kafka, worker_logs, app_id=first.app_id, instance="second")
    first.start(environment=WITHOUT_STANDBYS)
    second.start(environment=WITHOUT_STANDBYS)

    def logs() -> str:
        return first.log_text()[-2000:] + second.log_text()[-2000:]

    try:
        # A delivery on every partition, so that each worker commits on each it holds (a
        # partition shows in its lag gauge once it has).
        every = {str(p) for p in range(spec(Topic.CATALOG_DELIVERIES).partitions)}
        primer = events.unique_agency("primer")
        on_each = {_partition_of(f"{primer}.{i}"): f"{primer}.{i}" for i in range(200)}
        assert set(on_each) == every
        for service in on_each.values():
            await publish(producer, events.delivery(primer, service=service))
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        while loop.time() < deadline:
            shares = [_held_partitions(w, Topic.CATALOG_DELIVERIES) for w in (first, second)]
            if all(shares) and shares[0] | shares[1] == every:
                break
            await asyncio.sleep(1)
        assert all(shares), logs()
        assert shares[0] | shares[1] == every, logs()
        assert not shares[0] & shares[1]

        agency = events.unique_agency("shared")
        services = [f"{agency}.s{i}" for i in range(N_SERVICES)]
        # Each worker has deliveries of its own to count.
        assert all({_partition_of(s) for s in services} & share for share in shares)
        await asyncio.gather(
            *(
                publish(producer, events.delivery(agency, service=services[i % N_SERVICES]))
                for i in range(N_DELIVERIES)
            )
        )
        key = f"deliveries.count|agency={agency}|all_time:all"
        topic = Topic.METRICS_DELIVERIES.value
        counted = await wait_for_values(kafka_admin, topic, {key: float(N_DELIVERIES)})
        assert counted == {key: float(N_DELIVERIES)}, logs()
        # Still each worker's own share: no rebalance gave one of them everything meanwhile.
        assert [_held_partitions(w, Topic.CATALOG_DELIVERIES) for w in (first, second)] == shares

        # And it stays whole: no worker publishes its own share over it afterwards.
        await asyncio.sleep(3)
        latest = await latest_figures(kafka_admin, topic)
        assert latest[key]["value"] == float(N_DELIVERIES), logs()
    finally:
        first.stop()
        second.stop()
