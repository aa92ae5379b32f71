"""The soak (`make soak`, `benchmarks/soak.py`) samples the running platform under the
simulator's load: run here for seconds, so that it cannot rot. Whether memory stays
within 10% is the soak's own verdict over minutes, never asserted from a run this short."""

from __future__ import annotations

import pytest

from benchmarks.soak import growth, report, soak
from infra.platform import SERVICE_PROCESSES, LocalPlatform
from shared.db import SERVICES

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(120)]

#: Processes that consume topics in a group, and so report their lag on /metrics (the
#: access manager reads its topic without one).
CONSUMERS = {"identity", "catalog", "exchange", "metrics", "metrics-worker"}


async def test_the_soak_samples_every_process_and_every_services_tables(
    platform: LocalPlatform,
) -> None:
    first, last = await soak(platform, seconds=8, warmup_seconds=2)

    names = {process.name for process in SERVICE_PROCESSES}
    for taken in (first, last):
        assert set(taken.processes) == names
        assert all(process.rss_mb > 10 for process in taken.processes.values())
        assert {
            name for name, process in taken.processes.items() if process.consumer_lag is not None
        } >= CONSUMERS
        assert set(taken.outbox_rows) == set(SERVICES) == set(taken.inbox_rows)
    # Under the simulator's load the processes work and the services record what they take.
    assert all(last.processes[n].cpu_s > first.processes[n].cpu_s for n in CONSUMERS)
    assert sum(last.inbox_rows.values()) > sum(first.inbox_rows.values())
    assert set(growth(first, last)) == names
    text = report(first, last, limit=0.10)
    assert all(name in text for name in names)
    assert "after the warm-up: " in text  # the verdict, whichever it is
