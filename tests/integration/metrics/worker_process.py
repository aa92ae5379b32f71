"""The metrics worker as a real process on the test broker, and reading its figures."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.kafka import partitions_of
from shared.kafka_access import KafkaAccess
from shared.principals import METRICS_WORKER_APP_ID

REPO = Path(__file__).resolve().parents[3]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class ModuleProcess:
    """`python -m <module>` from the repository, its output in `log_file`."""

    def __init__(self, module: str, log_file: Path) -> None:
        self.module = module
        self.log_file = log_file
        self.process: subprocess.Popen[bytes] | None = None

    def run(self, env: dict[str, str]) -> None:
        with self.log_file.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", self.module],
                cwd=REPO,
                env={**os.environ, **env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""


class WorkerProcess(ModuleProcess):
    """`python -m services.metrics.worker` with its own consumer group and tables."""

    def __init__(
        self,
        kafka: KafkaAccess,
        log_dir: Path,
        *,
        app_id: str | None = None,
        instance: str = "",
        module: str = "services.metrics.worker",
    ) -> None:
        """`instance` names one of several workers of the same `app_id` (each its own data
        directory, so its own member of the group); `module`, another release of it."""
        self.app_id = app_id or f"{METRICS_WORKER_APP_ID}-test-{uuid.uuid4().hex[:8]}"
        self.name = f"{self.app_id}-{instance}" if instance else self.app_id
        super().__init__(module, log_dir / f"{self.name}.log")
        self.kafka = kafka
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self, *, failpoints: str = "", environment: dict[str, str] | None = None) -> None:
        """Start it (again, on the same tables); `failpoints` armed as shared/failpoints.py
        says; `environment` on top of the test's."""
        self.run(
            {
                **self.kafka.environment(),
                "PANJEREH_METRICS_WORKER_ID": self.app_id,
                "PANJEREH_METRICS_WORKER_DATA_DIR": str(self.log_file.parent / self.name),
                "PANJEREH_METRICS_WORKER_PORT": str(self.port),
                "PANJEREH_METRICS_FLUSH_INTERVAL": "0.5",
                "PANJEREH_FAILPOINTS": failpoints,
                **(environment or {}),
            }
        )

    def kill(self) -> None:
        """SIGKILL: no shutdown, no flush, no commit."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


async def latest_figures(kafka: KafkaAccess, topic: str) -> dict[str, dict[str, Any]]:
    """The latest value on a metrics topic per record key (what compaction keeps)."""
    consumer = AIOKafkaConsumer(
        **kafka.client_options(), enable_auto_commit=False, isolation_level="read_committed"
    )
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(await partitions_of(kafka, topic))]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        latest: dict[str, dict[str, Any]] = {}
        while any([await consumer.position(tp) < ends[tp] for tp in tps]):
            batch = await consumer.getmany(*tps, timeout_ms=500)
            for records in batch.values():
                for record in records:
                    if record.key is not None and record.value is not None:
                        latest[record.key.decode()] = json.loads(record.value)["payload"]
        return latest
    finally:
        await consumer.stop()


async def wait_for_values(
    kafka: KafkaAccess, topic: str, expected: dict[str, float], *, timeout: float = 90.0
) -> dict[str, float | None]:
    """Poll the topic until every key has its expected value, or time runs out.

    Returns what the topic holds for those keys at the end, for the assertion.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        latest = await latest_figures(kafka, topic)
        found = {key: (latest[key]["value"] if key in latest else None) for key in expected}
        if found == expected or loop.time() > deadline:
            return found
        await asyncio.sleep(1.0)


class ServiceProcess(ModuleProcess):
    """`python -m services.metrics` (the HTTP service) on a free port."""

    def __init__(self, kafka: KafkaAccess, database_url: str, log_dir: Path) -> None:
        self.port = free_port()
        super().__init__("services.metrics", log_dir / f"metrics-service-{self.port}.log")
        self.url = f"http://127.0.0.1:{self.port}"
        self.kafka = kafka
        self.database_url = database_url

    def start(self) -> None:
        self.run(
            {
                **self.kafka.environment(),
                "PANJEREH_DATABASE_URL": self.database_url,
                "PANJEREH_METRICS_PORT": str(self.port),
            }
        )

    async def wait_healthy(self, timeout: float = 60.0) -> None:
        import httpx

        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        async with httpx.AsyncClient() as client:
            while loop.time() < deadline:
                try:
                    if (await client.get(f"{self.url}/health")).status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                await asyncio.sleep(0.3)
        raise AssertionError(f"the metrics service did not become healthy:\n{self.log_text()}")

    def log_text(self) -> str:
        return super().log_text()[-3000:]
