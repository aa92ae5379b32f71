"""Three brokers, one SIGKILLed at a time under load: nothing lost, nothing doubled.

The platform's Kafka as `PANJEREH_KAFKA_BROKERS=3` runs it: three nodes, each a broker
and a voter of the controller quorum, every topic on three replicas with two in sync
(`init` makes them so; the brokers' own topics too). Two agencies drive a steady stream of
signed requests through an exchange (the crash test's load), and a third reports
deliveries through the catalog, for as long as it takes the active controller to get
SIGKILL and be started again, and then, once every partition is back in sync, another
broker to get the same. Every request must end with exactly one outcome on the
consumer's channel, one monitoring record and one request and one response record in
the audit log, which verifies; every delivery report must be recorded by the catalog once
and counted once in the metrics worker's figure; the exchange, the catalog and the worker
ride it out in the same processes.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient

from infra.platform import SERVICE_PROCESSES, LocalPlatform
from infra.platform.kafka import KafkaNode, _java_env
from infra.platform.processes import ManagedProcess, http_ok, run_coroutine, wait_until
from shared.kafka_access import KafkaAccess
from shared.topics import Durability
from tests.e2e.delivery_load import (
    Reporting,
    Tokens,
    assert_each_report_counted_once,
    issued,
    register_agency_with_a_service,
)
from tests.e2e.exchange_load import (
    ExchangeProcess,
    assert_each_published_once,
    audit_records_of,
    drive,
    until_healthy,
)
from tests.integration.exchange.helpers import audit_verify
from tests.issued import issued_credentials
from tests.slots import e2e_ports

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

RATE_PER_SECOND = 30
DELIVERIES_PER_SECOND = 10
CHAOS_AFTER = 60
DOWN_SECONDS = 5.0
#: Requests go on this long after the second broker is back in sync.
AFTERWARDS_SECONDS = 3.0


@pytest.fixture(scope="module")
def cluster() -> Iterator[LocalPlatform]:
    """Three brokers, PostgreSQL, `init` and the access manager (agencies' channels)."""
    home = Path(tempfile.mkdtemp(prefix="panjereh-e2e-brokers-"))
    home.chmod(0o755)  # PostgreSQL (the postgres user when we are root) enters the home
    platform = LocalPlatform(home, e2e_ports(), brokers=3)
    try:
        platform.start_infrastructure()
        [access] = [s for s in SERVICE_PROCESSES if s.name == "access-manager"]
        manager = platform.start_service(access)
        wait_until(
            lambda: http_ok(platform.service_url(access) + "/health"),
            timeout=90,
            what="the access manager",
            alive=manager.running,
            log=manager.log_file,
        )
        yield platform
    finally:
        platform.down()
        if os.environ.get("PANJEREH_TEST_KEEP_HOME") != "1":
            shutil.rmtree(home, ignore_errors=True)


def fully_replicated(admin: KafkaAccess) -> bool:
    """Whether every partition of every topic has all its replicas in sync."""

    async def check() -> bool:
        client = AIOKafkaAdminClient(**admin.client_options(), request_timeout_ms=5000)
        await client.start()
        try:
            described = await client.describe_topics(await client.list_topics())
            return all(
                len(partition["isr"]) == len(partition["replicas"])
                for topic in described
                for partition in topic["partitions"]
            )
        except Exception:
            return False
        finally:
            await client.close()

    return run_coroutine(check)


@dataclass
class Chaos:
    """Kills the active controller, restarts it, waits for full replication, then does
    the same to another broker; what it did and when, for the assertions."""

    platform: LocalPlatform
    done: list[tuple[str, int, float]] = field(default_factory=list)
    error: BaseException | None = None
    thread: threading.Thread | None = None

    def begin(self, _: str) -> None:
        self.thread = threading.Thread(target=self._run, name="chaos", daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            leader = self.platform.kafka.quorum_leader()
            self._kill_and_restart(leader)
            another = next(n for n in (1, 2, 3) if n != leader)
            self._kill_and_restart(another)
        except BaseException as error:
            self.error = error

    def _kill_and_restart(self, node_id: int) -> None:
        node: KafkaNode = self.platform.kafka.nodes[node_id - 1]
        process = node.process()
        pid = process.pid()
        assert pid is not None, f"broker {node_id} is not running"
        os.kill(pid, signal.SIGKILL)
        self.done.append(("killed", node_id, time.monotonic()))
        time.sleep(DOWN_SECONDS)
        process.start(env=_java_env(), cwd=self.platform.home)
        self.done.append(("restarted", node_id, time.monotonic()))
        wait_until(
            lambda: fully_replicated(self.platform.kafka_admin),
            timeout=120,
            what=f"every partition in sync again after broker {node_id}",
            interval=1.0,
        )
        self.done.append(("in sync", node_id, time.monotonic()))

    def finish(self) -> list[tuple[str, int, float]]:
        assert self.thread is not None, "the chaos never began"
        self.thread.join(timeout=240)
        assert not self.thread.is_alive(), f"the chaos did not finish: {self.done}"
        if self.error is not None:
            raise self.error
        return self.done


@pytest.fixture
def exchange(tmp_path: Path, cluster: LocalPlatform) -> Iterator[ExchangeProcess]:
    process = ExchangeProcess(
        tmp_path / "exchange.log",
        str(cluster.credentials_file("exchange")),
        cluster.postgres.service_url("exchange"),
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


@dataclass
class FiguresSide:
    """The catalog and the metrics worker, processes of the platform's table on the
    cluster, and a client of the catalog's API."""

    catalog: ManagedProcess
    worker: ManagedProcess
    catalog_api: httpx.AsyncClient


def start_healthy(platform: LocalPlatform, name: str) -> ManagedProcess:
    [service] = [s for s in SERVICE_PROCESSES if s.name == name]
    process = platform.start_service(service)
    wait_until(
        lambda: http_ok(platform.service_url(service) + "/health"),
        timeout=120,
        what=name,
        alive=process.running,
        log=process.log_file,
    )
    return process


@pytest.fixture
async def figures_side(
    cluster: LocalPlatform, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[FiguresSide]:
    # An empty register: the reference one's 131 agencies would be 1,310 topics more, on
    # three replicas each, for the brokers to move at every restart.
    monkeypatch.setenv("PANJEREH_CATALOG_LOAD_REFERENCE_WHEN_EMPTY", "false")
    started: list[ManagedProcess] = []
    try:
        for name in ("catalog", "metrics-worker"):
            started.append(await asyncio.to_thread(start_healthy, cluster, name))
        [catalog] = [s for s in SERVICE_PROCESSES if s.name == "catalog"]
        async with httpx.AsyncClient(base_url=cluster.service_url(catalog), timeout=10) as api:
            yield FiguresSide(started[0], started[1], api)
    finally:
        for process in started:
            process.stop()


@pytest.mark.allows_error_logs  # clients log every failed fetch from a killed broker
async def test_the_active_controller_then_another_broker_killed_under_load_lose_and_double_nothing(
    cluster: LocalPlatform,
    exchange: ExchangeProcess,
    figures_side: FiguresSide,
    http: httpx.AsyncClient,
    tmp_path: Path,
) -> None:
    assert cluster.kafka.durability == Durability(replication_factor=3, min_insync_replicas=2)
    await until_healthy(exchange)
    tokens = await Tokens.published(cluster.kafka_admin, cluster.env()["PANJEREH_IDENTITY_ISSUER"])
    agency = f"e2e-dl-{uuid.uuid4().hex[:8]}"
    service_id = await register_agency_with_a_service(figures_side.catalog_api, tokens, agency)
    reporting = Reporting(await issued(cluster, agency), agency, service_id, DELIVERIES_PER_SECOND)
    reporting.start()
    keys = (await http.get("/keys")).json()
    chaos = Chaos(cluster)
    started = time.monotonic()
    last_sent = started

    def more(sent: int) -> bool:
        """Requests until the chaos is over and a little after: load spans it all."""
        nonlocal last_sent
        last_sent = time.monotonic()
        if sent <= CHAOS_AFTER or chaos.thread is None or chaos.thread.is_alive():
            return True
        return bool(chaos.done) and last_sent - chaos.done[-1][2] < AFTERWARDS_SECONDS

    ours, consumer = await drive(
        cluster.kafka_admin,
        issued_credentials(cluster.home / "credentials"),
        cluster.postgres.service_url("exchange"),
        http,
        chaos.begin,
        rate_per_second=RATE_PER_SECOND,
        midway_after=CHAOS_AFTER,
        more=more,
    )
    done = chaos.finish()
    reported = await reporting.stop()
    timeline = [(what, node, round(at - started, 1)) for what, node, at in done]
    assert [what for what, _, _ in timeline] == ["killed", "restarted", "in sync"] * 2, timeline
    assert len({node for _, node, _ in timeline}) == 2
    # Both failures happened while requests were being sent and deliveries reported.
    assert timeline[-1][2] < last_sent - started, timeline
    assert reporting.acknowledged_at[0] < done[0][2] < done[-1][2] < reporting.acknowledged_at[-1]
    print(f"{len(reported)} deliveries reported, {reporting.resent} sent again", timeline)

    # The exchange rode it out, healthy; the catalog and the worker are the same processes
    # (that they still work, the figures below tell).
    assert exchange.process is not None
    assert exchange.process.poll() is None
    await until_healthy(exchange)
    for process in (figures_side.catalog, figures_side.worker):
        assert process.running(), process.log_file.read_text()[-3000:]
    await assert_each_published_once(cluster.kafka_admin, ours, consumer)
    audit = await audit_records_of(cluster.admin_database_url, ours)
    assert Counter((transaction, kind) for transaction, kind, _ in audit) == {
        (transaction, kind): 1 for transaction in ours for kind in ("request", "response")
    }
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(keys))
    status, out = await audit_verify(
        "exchange", cluster.admin_database_url, cluster.kafka_admin, keys_file
    )
    assert status == 0, out
    await assert_each_report_counted_once(
        cluster.admin_database_url, cluster.kafka_admin, agency, reported
    )
