"""The exchange as real processes, killed mid-load: no request is lost, doubled or left
unaudited.

Two agencies on the client library drive it: a consumer sends a steady stream of signed
requests, a provider answers each at once. Midway an exchange gets SIGKILL (no clean
shutdown: open database and Kafka transactions die with it). One exchange is started
again; of two in one consumer group, the other takes its partitions and its outbox on.
Every request must end with exactly one final outcome on the consumer's outcomes channel,
exactly one monitoring record on `exchange.transactions`, and exactly one request and one
response record in the audit log, which verifies against the exchange's checkpoints.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from panjereh_agency import ExchangeClient, ExchangeKeys, ProviderWorker

from shared.events.exchange import DataRequestForwarded
from shared.kafka_access import KafkaAccess
from shared.topics import Topic, channel
from tests.groups import group_admin, holders
from tests.integration.exchange.helpers import (
    ISSUER,
    AgencySystem,
    Issuer,
    announce_world,
    audit_verify,
    eventually,
    grant,
    register_data_service,
    run_id,
)
from tests.integration.kafka_helpers import read_all
from tests.slots import e2e_ports

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]

PORT = e2e_ports().exchange + 10
REQUESTS = 400
RATE_PER_SECOND = 80
KILL_AFTER = 150
CITIZEN = "c1" * 32


class ExchangeProcess:
    """`python -m services.exchange`, started and killed by this test alone."""

    def __init__(
        self, log_path: Path, credentials_file: str, database_url: str, port: int = PORT
    ) -> None:
        self.log_path = log_path
        self.credentials_file = credentials_file
        self.database_url = database_url
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = os.environ | {
            "PANJEREH_EXCHANGE_PORT": str(self.port),
            "PANJEREH_KAFKA_CREDENTIALS_FILE": self.credentials_file,
            "PANJEREH_TOKEN_ISSUER": ISSUER,
            "PANJEREH_DATABASE_URL": self.database_url,
        }
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "services.exchange"], env=env, stdout=log, stderr=log
        )

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/health", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        assert self.process.wait(timeout=30) == -signal.SIGKILL

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


@pytest.fixture
def exchange(
    tmp_path: Path, credentials_file: Callable[[str], str], database_urls: Mapping[str, str]
) -> Iterator[ExchangeProcess]:
    process = ExchangeProcess(
        tmp_path / "exchange.log", credentials_file("exchange"), database_urls["exchange"]
    )
    process.start()
    try:
        yield process
    finally:
        process.stop()


async def until_healthy(process: ExchangeProcess) -> None:
    async def check() -> bool:
        return await asyncio.to_thread(process.healthy)

    await eventually(check, timeout=90)


@pytest.fixture
def two_exchanges(
    tmp_path: Path, credentials_file: Callable[[str], str], database_urls: Mapping[str, str]
) -> Iterator[tuple[ExchangeProcess, ExchangeProcess]]:
    """Two exchange processes in one consumer group, on one database schema."""
    pair = tuple(
        ExchangeProcess(
            tmp_path / f"exchange-{index}.log",
            credentials_file("exchange"),
            database_urls["exchange"],
            port=PORT + index,
        )
        for index in range(2)
    )
    first, second = pair
    try:
        first.start()
        second.start()
        yield first, second
    finally:
        for process in pair:
            process.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", timeout=10) as client:
        yield client


async def answer(request: DataRequestForwarded) -> dict[str, Any]:
    return {"alive": True}


async def drive(
    kafka_admin: KafkaAccess,
    agency_kafka: Callable[[str], Awaitable[KafkaAccess]],
    database_url: str,
    http: httpx.AsyncClient,
    midway: Callable[[str], None],
) -> tuple[set[str], str]:
    """Two agencies send `REQUESTS` requests through the exchange at `http`, and `midway`
    runs (given the consumer's requests channel) after `KILL_AFTER` of them; every
    outcome is answered. The transaction ids, and the consumer's code."""
    run = run_id()
    issuer = Issuer()
    consumer, provider = AgencySystem(f"e2e-ss-{run}"), AgencySystem(f"e2e-cr-{run}")
    await announce_world(kafka_admin, database_url, issuer, consumer, provider)
    data_service = await register_data_service(
        http, issuer, provider, "vital-status", timeout_ms=120_000
    )
    await grant(http, issuer, consumer, data_service)
    exchange_keys = ExchangeKeys(str(http.base_url))
    await exchange_keys.refresh()  # kept: `midway` may kill the exchange at `http`

    worker = ProviderWorker(
        await agency_kafka(provider.code),
        provider.code,
        provider.key,
        provider.kid,
        {data_service: answer},
        exchange_keys=exchange_keys,
    )
    worker_task = asyncio.create_task(worker.run())
    await asyncio.wait_for(worker.wait_ready(), 60)
    async with ExchangeClient(
        await agency_kafka(consumer.code),
        consumer.code,
        consumer.key,
        consumer.kid,
        exchange_keys=exchange_keys,
    ) as client:
        futures = {}
        for index in range(REQUESTS):
            if index == KILL_AFTER:
                await asyncio.to_thread(midway, channel(Topic.AGENCY_REQUESTS, consumer.code))
            transaction_id, future = await client.send(
                data_service, "benefit-eligibility", {"citizen": CITIZEN}, citizen=CITIZEN
            )
            futures[transaction_id] = future
            await asyncio.sleep(1 / RATE_PER_SECOND)
        outcomes = await asyncio.wait_for(asyncio.gather(*futures.values()), 240)
    await worker.stop()
    await asyncio.wait_for(worker_task, 30)
    assert Counter(o.outcome for o in outcomes) == {"answered": REQUESTS}
    return {str(t) for t in futures}, consumer.code


async def assert_each_published_once(
    kafka_admin: KafkaAccess, ours: set[str], consumer: str
) -> None:
    """Each transaction's outcome on the consumer's channel, and its monitoring record,
    exactly once."""

    def count(records: list[Any]) -> Counter[str]:
        seen: Counter[str] = Counter()
        for record in records:
            # Other tests leave malformed records on shared topics on purpose: skip them.
            try:
                transaction = json.loads(record.value)["payload"].get("transaction_id")
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
            if transaction in ours:
                seen[transaction] += 1
        return seen

    outcomes_topic = channel(Topic.AGENCY_OUTCOMES, consumer)
    for topic in (outcomes_topic, Topic.EXCHANGE_TRANSACTIONS.value):
        records = await read_all(
            kafka_admin, topic, until=lambda rs: len(count(rs)) >= len(ours), timeout=60
        )
        per_transaction = count(records)
        assert set(per_transaction) == ours, topic
        assert set(per_transaction.values()) == {1}, topic


async def test_killing_the_exchange_mid_load_loses_and_doubles_nothing(
    exchange: ExchangeProcess,
    http: httpx.AsyncClient,
    kafka_admin: KafkaAccess,
    agency_kafka: Callable[[str], Awaitable[KafkaAccess]],
    database_urls: Mapping[str, str],
) -> None:
    await until_healthy(exchange)

    def restart(_: str) -> None:
        exchange.kill()
        exchange.start()

    ours, consumer = await drive(
        kafka_admin, agency_kafka, database_urls["exchange"], http, restart
    )
    await until_healthy(exchange)
    assert exchange.log_path.read_text().count("service started") == 2
    await assert_each_published_once(kafka_admin, ours, consumer)


async def test_two_exchanges_share_the_load_and_one_killed_loses_doubles_and_unaudits_nothing(
    two_exchanges: tuple[ExchangeProcess, ExchangeProcess],
    kafka_admin: KafkaAccess,
    agency_kafka: Callable[[str], Awaitable[KafkaAccess]],
    database_urls: Mapping[str, str],
    admin_database_url: str,
    tmp_path: Path,
) -> None:
    for process in two_exchanges:
        await until_healthy(process)
    groups = group_admin(kafka_admin)
    killed: list[ExchangeProcess] = []

    def kill_the_one_taking_the_requests(requests: str) -> None:
        """SIGKILL the exchange that holds the consumer's requests channel now, once the
        group shares the partitions between both processes."""
        ours = {process.pid: process for process in two_exchanges}
        deadline = time.monotonic() + 60
        while True:
            held = holders(groups, "exchange")
            members = {pid_of(member) for held_by in held.values() for member in held_by}
            owners = {pid_of(member) for member in held.get(requests, ())}
            if set(ours) <= members and len(owners) == 1 and owners <= set(ours):
                break
            assert time.monotonic() < deadline, f"the group never shared: {held}"
            time.sleep(0.5)
        [victim] = [ours[pid] for pid in owners]
        victim.kill()
        killed.append(victim)

    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", timeout=10) as first:
        keys = (await first.get("/keys")).json()
        ours, consumer = await drive(
            kafka_admin,
            agency_kafka,
            database_urls["exchange"],
            first,
            kill_the_one_taking_the_requests,
        )
    [victim] = killed
    [survivor] = [process for process in two_exchanges if process is not victim]
    assert survivor.healthy()
    await assert_each_published_once(kafka_admin, ours, consumer)

    audit = await audit_records_of(admin_database_url, ours)
    assert Counter((transaction, kind) for transaction, kind, _ in audit) == {
        (transaction, kind): 1 for transaction in ours for kind in ("request", "response")
    }
    keys_file = tmp_path / "keys.json"
    keys_file.write_text(json.dumps(keys))
    status, out = await audit_verify("exchange", admin_database_url, kafka_admin, keys_file)
    assert status == 0, out
    assert "audit log intact" in out


def pid_of(member: str) -> int:
    """The process of a group member, from its client id (`shared.kafka.member_client_id`)."""
    return int(member.rsplit("-", 1)[1])


async def audit_records_of(database_url: str, ours: set[str]) -> list[tuple[str, str, int]]:
    """Each of these transactions' audit records: its id, kind and chain."""
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT transaction_id::text, kind, chain FROM exchange.audit_log"
            " WHERE transaction_id = ANY($1::uuid[])",
            list(ours),
        )
    finally:
        await connection.close()
    return [(row[0], row[1], row[2]) for row in rows]
