"""The whole platform, as `panjereh up` runs it, on ports of its own.

Uses a temporary home and ports that collide neither with a developer's platform (9092,
55432, 800x) nor with the test session's infrastructure (29092/29093, 55433).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest

from infra.platform import SERVICE_PROCESSES, LocalPlatform
from shared.topics import TOPICS
from tests.kcat import kcat
from tests.slots import e2e_ports

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(240)]

PORTS = e2e_ports()
LIFECYCLE = "platform.lifecycle"


@pytest.fixture(scope="module")
def home() -> Iterator[Path]:
    # Not pytest's tmp_path: its parent is mode 0700, and PostgreSQL (run as the
    # `postgres` user when we are root) must be able to enter the home.
    path = Path(tempfile.mkdtemp(prefix="panjereh-e2e-"))
    path.chmod(0o755)
    yield path
    LocalPlatform(path, PORTS).down()
    shutil.rmtree(path, ignore_errors=True)


def _kcat(home: Path, *args: str) -> str:
    """kcat as the platform team would run it: with the admin's credentials file."""
    credentials = LocalPlatform(home, PORTS).credentials_file("admin")
    return kcat("-F", str(credentials), *args, check=True).stdout


def _lifecycle_events(home: Path) -> list[dict[str, Any]]:
    out = _kcat(home, "-C", "-t", LIFECYCLE, "-o", "beginning", "-e", "-q")
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _wait_for_started_events(
    home: Path, at_least: int, timeout: float = 60
) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        events = [e for e in _lifecycle_events(home) if e.get("type") == "ServiceStarted"]
        if len(events) >= at_least or time.monotonic() > deadline:
            return events
        time.sleep(1)


def _health(url: str) -> int:
    with urllib.request.urlopen(url + "/health", timeout=5) as response:
        return int(response.status)


def _our_processes(home: Path) -> list[str]:
    """Every process that mentions this home or these ports (cmdline or PANJEREH_HOME)."""
    ports = [str(p) for p in vars(PORTS).values()]
    found = []
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            cmdline = " ".join(proc.info["cmdline"] or [])
            if proc.pid == os.getpid():
                continue
            env_home = proc.environ().get("PANJEREH_HOME")
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
        if str(home) in cmdline or env_home == str(home) or any(p in cmdline for p in ports):
            found.append(f"{proc.pid}: {cmdline}")
    return found


def test_up_down_up_keeps_data(home: Path) -> None:
    platform = LocalPlatform(home, PORTS, environment="test")

    endpoints = dict(platform.up())
    for process in SERVICE_PROCESSES:
        assert _health(endpoints[process.name]) == 200, process.name

    metadata = _kcat(home, "-L")
    # Without credentials a client gets nothing, not even the list of topics.
    refused = kcat("-b", f"127.0.0.1:{PORTS.kafka}", "-L", "-m", "5")
    assert refused.returncode != 0
    assert "Metadata for all topics" not in refused.stdout
    for spec in TOPICS:
        # Agencies' channels are made as the catalog registers agencies (tested apart).
        if not spec.per_agency:
            assert f'topic "{spec.name}"' in metadata

    # The worker, the simulator and the access manager are not services: they announce
    # no start.
    services = {
        p.name
        for p in SERVICE_PROCESSES
        if p.name not in {"metrics-worker", "simulator", "access-manager"}
    }
    events = _wait_for_started_events(home, at_least=len(services))
    assert events, "no ServiceStarted event on platform.lifecycle"
    assert {e["source"] for e in events} >= services

    # A second `up` changes nothing: same processes, still healthy.
    pids = {row.name: row.pid for row in platform.status()}
    platform.up()
    assert {row.name: row.pid for row in platform.status()} == pids
    assert all(row.running for row in platform.status())

    platform.down()
    assert not any(row.running for row in platform.status())
    leftovers = _our_processes(home)
    assert not leftovers, leftovers
    assert not list((home / "run").glob("*.pid"))

    # Data survives down/up: the earlier events are still in the topic.
    platform.up()
    try:
        again = _wait_for_started_events(home, at_least=2 * len(services))
        before = {json.dumps(e, sort_keys=True) for e in events}
        assert before <= {json.dumps(e, sort_keys=True) for e in again}
    finally:
        platform.down()
    assert not _our_processes(home)
