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
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from infra.platform import SERVICE_PROCESSES, LocalPlatform, ServiceProcess
from infra.platform.paths import REPO_ROOT
from infra.platform.processes import ManagedProcess, http_ok
from shared.principals import METRICS_WORKER_APP_ID
from tests.e2e.live.figures import all_time_national, as_figures, recorded_totals
from tests.e2e.live.simulator_control import restart_simulator, stop_simulator
from tests.groups import group_admin, is_stable_with, member_count
from tests.integration.exchange.helpers import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

BY_NAME = {process.name: process for process in SERVICE_PROCESSES}
SCALED = ("identity", "catalog", "metrics", "metrics-worker")
#: Each scaled process's consumer group.
GROUPS = {name: name for name in SCALED} | {"metrics-worker": METRICS_WORKER_APP_ID}
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


@dataclass
class ScaledOut:
    instances: list[SecondInstance]
    #: Each group's members before the second instances joined.
    alone: dict[str, int]


@pytest.fixture
def scaled_out(platform: LocalPlatform, tmp_path: Path) -> Iterator[ScaledOut]:
    client = group_admin(platform.kafka_admin)
    alone = {group: member_count(client, group) for group in GROUPS.values()}
    started = [second_instance(platform, BY_NAME[name], tmp_path) for name in SCALED]
    try:
        yield ScaledOut(started, alone)
    finally:
        for instance in started:
            instance.process.stop()


async def test_two_of_each_consumer_share_the_load_and_one_killed_loses_and_doubles_nothing(
    platform: LocalPlatform, scaled_out: ScaledOut
) -> None:
    seconds = scaled_out.instances

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
        # The killed members' partitions move once their sessions time out: until then
        # nobody reads them, and what the catalog and identity record can still grow.
        client = group_admin(platform.kafka_admin)

        async def taken_over() -> bool:
            return all(
                [
                    await asyncio.to_thread(is_stable_with, client, group, scaled_out.alone[group])
                    for group in GROUPS.values()
                ]
            )

        await eventually(taken_over, timeout=120)
        await counted_exactly_and_still(platform)
    finally:
        await restart_simulator(platform)  # the platform goes on as it was found


async def counted_exactly_and_still(platform: LocalPlatform, timeout: float = 180) -> None:
    """The worker's figures equal what was recorded, and still do a while later.

    A late double count would show within the wait (the worker publishes within a second).
    What was recorded may still grow in that wait (the last of the load, recorded late):
    then the figures must follow it, and the wait starts again.
    """
    deadline = time.monotonic() + timeout
    seen: list[tuple[dict[str, int], dict[str, float]]] = []
    while time.monotonic() < deadline:
        truth, counted = await recorded_totals(platform), await all_time_national(platform)
        seen = [*seen[-4:], (truth, counted)]
        if counted != as_figures(truth):
            await asyncio.sleep(0.5)
            continue
        assert counted["deliveries.count"] > 0
        assert counted["identity.signins"] > 0
        await asyncio.sleep(6)
        truth_later = await recorded_totals(platform)
        if truth_later == truth:
            assert await all_time_national(platform) == counted, "counted twice, late"
            return
    raise AssertionError(f"never counted exactly; last (recorded, counted): {seen}")
