"""Fixtures of the metrics integration tests: a producer and real worker processes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from aiokafka import AIOKafkaProducer

from shared.kafka import new_producer
from shared.kafka_access import KafkaAccess
from tests.integration.metrics.worker_process import WorkerProcess


@pytest.fixture
async def producer(kafka_admin: KafkaAccess) -> AsyncIterator[AIOKafkaProducer]:
    producer = new_producer(kafka_admin, client_id="metrics-tests")
    await producer.start()
    yield producer
    await producer.stop()


@pytest.fixture
def worker_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("metrics-worker")


@pytest.fixture
def worker(kafka_as: Callable[[str], KafkaAccess], worker_logs: Path) -> Iterator[WorkerProcess]:
    """A worker of its own (own group, own tables), started; stopped after the test."""
    process = WorkerProcess(kafka_as("metrics-worker"), worker_logs)
    process.start()
    yield process
    process.stop()
