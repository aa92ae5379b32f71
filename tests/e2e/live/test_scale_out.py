"""Every consumer scales out: a second identity, catalog, metrics service and metrics worker
join their groups on the live platform under the simulator's load, take a share of the
partitions, and are SIGKILLed mid-load. Their shares go back to the first instances, and
nothing is lost or counted twice: the worker's all-time figures for deliveries and
sign-ins equal the rows the catalog and identity recorded, and hold still once the load
stops.

(The exchange's two-instance test is `tests/e2e/test_exchange_crash.py`.)
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from infra.platform import SERVICE_PROCESSES, LocalPlatform, ServiceProcess
from infra.platform.paths import REPO_ROOT
from infra.platform.processes import ManagedProcess, http_ok
from tests.database import fetch_rows
from tests.e2e.live.simulator_control import restart_simulator, stop_simulator
from tests.integration.exchange.helpers import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

BY_NAME = {process.name: process for process in SERVICE_PROCESSES}
SCALED = ("identity", "catalog", "metrics", "metrics-worker")
#: The second instances listen this far above the first ones (within the slot's ports).
PORT_OFFSET = 50
UNDER_LOAD_SECONDS = 8.0


@dataclass
class SecondInstance:
    service: ServiceProcess
    process: ManagedProcess
    url: str

    def holds_partitions(self) -> bool:
        """Whether it has held a partition of its group (its lag gauges are per partition
        held)."""
        try:
            text = httpx.get(f"{self.url}/metrics", timeout=5).text
        except httpx.HTTPError:
            return False
        gauge = (
            "panjereh_worker_lag_records{"
            if self.service.name == "metrics-worker"
            else "panjereh_consumer_lag_records{"
        )
        return gauge in text


def second_instance(platform: LocalPlatform, service: ServiceProcess, data: Path) -> SecondInstance:
    first_url = platform.service_url(service)
    port = int(first_url.rsplit(":", 1)[1]) + PORT_OFFSET
    env = {
        **os.environ,
        **platform.env_for(service),
        f"PANJEREH_{service.name.upper().replace('-', '_')}_PORT": str(port),
    }
    if service.name == "metrics-worker":
        # Its own tables, so its own static member id; and a short session, so that its
        # partitions go back to the first worker soon after it is killed.
        env["PANJEREH_METRICS_WORKER_DATA_DIR"] = str(data / "metrics-worker-2")
        env["PANJEREH_METRICS_SESSION_TIMEOUT"] = "8"
    first = platform.process(service)
    process = ManagedProcess(
        name=f"{service.name}-2",
        command=first.command,
        pid_file=platform.home / "run" / f"{service.name}-2.pid",
        log_file=platform.home / "logs" / f"{service.name}-2.log",
        home=platform.home,
    )
    process.start(env=env, cwd=REPO_ROOT)
    return SecondInstance(service, process, f"http://127.0.0.1:{port}")


@pytest.fixture
def seconds(platform: LocalPlatform, tmp_path: Path) -> Iterator[list[SecondInstance]]:
    started = [second_instance(platform, BY_NAME[name], tmp_path) for name in SCALED]
    try:
        yield started
    finally:
        for instance in started:
            instance.process.stop()


async def recorded_totals(platform: LocalPlatform) -> dict[str, int]:
    """What the catalog and identity recorded: the ground truth of the worker's figures."""
    [row] = await fetch_rows(
        platform.admin_database_url,
        "SELECT (SELECT count(*) FROM catalog.deliveries) AS deliveries,"
        " (SELECT count(*) FROM identity.sign_ins WHERE outcome = 'succeeded') AS sign_ins",
    )
    return {"deliveries.count": row["deliveries"], "identity.signins": row["sign_ins"]}


async def all_time_national(platform: LocalPlatform) -> dict[str, float]:
    """The worker's all-time national figures of deliveries and sign-ins, as the metrics
    service holds them."""
    rows = await fetch_rows(
        platform.admin_database_url,
        "SELECT metric, value FROM metrics.metric_values"
        " WHERE metric = ANY($1::text[]) AND granularity = 'all_time'"
        " AND dimensions = '{}'::jsonb",
        ["deliveries.count", "identity.signins"],
    )
    return {row["metric"]: row["value"] for row in rows}


async def test_two_of_each_consumer_share_the_load_and_one_killed_loses_and_doubles_nothing(
    platform: LocalPlatform, seconds: list[SecondInstance]
) -> None:
    async def up() -> bool:
        return all([await asyncio.to_thread(http_ok, s.url + "/health") for s in seconds])

    await eventually(up, timeout=120)

    async def sharing() -> bool:
        return all([await asyncio.to_thread(s.holds_partitions) for s in seconds])

    await eventually(sharing, timeout=120)
    await asyncio.sleep(UNDER_LOAD_SECONDS)  # both instances of each at work under load

    for instance in seconds:
        pid = instance.process.pid()
        assert pid is not None, f"{instance.process.name} is not running"
        os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(UNDER_LOAD_SECONDS)  # the survivors take over under load

    stop_simulator(platform)
    try:
        # The killed members' partitions move once their sessions time out, then the
        # survivors catch up.
        async def counted_exactly() -> dict[str, float] | None:
            truth = await recorded_totals(platform)
            counted = await all_time_national(platform)
            exact = counted == {metric: float(total) for metric, total in truth.items()}
            return counted if exact else None

        counted = await eventually(counted_exactly, timeout=180)
        assert counted["deliveries.count"] > 0
        assert counted["identity.signins"] > 0
        # A late double count would show by now: the worker publishes within a second.
        await asyncio.sleep(6)
        assert await counted_exactly() == counted
    finally:
        await restart_simulator(platform)  # the platform goes on as it was found
