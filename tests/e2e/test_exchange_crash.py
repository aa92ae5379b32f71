"""The exchange as a real process, killed mid-load and restarted: no request is lost or doubled.

Two agencies on the client library drive it: a consumer sends a steady stream of signed
requests, a provider answers each at once. Midway the exchange gets SIGKILL (no clean
shutdown: open database and Kafka transactions die with it) and is started again. Every
request must end with exactly one final outcome on `exchange.consumer-responses`, and
exactly one monitoring record on `exchange.transactions`.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx
import pytest
from panjereh_agency import ExchangeClient, ExchangeKeys, ProviderWorker

from shared.events.exchange import DataRequestForwarded
from shared.kafka_access import KafkaAccess
from shared.topics import Topic, channel
from tests.integration.exchange.helpers import (
    ISSUER,
    AgencySystem,
    Issuer,
    announce_world,
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

    def __init__(self, log_path: Path, credentials_file: str, database_url: str) -> None:
        self.log_path = log_path
        self.credentials_file = credentials_file
        self.database_url = database_url
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = os.environ | {
            "PANJEREH_EXCHANGE_PORT": str(PORT),
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
            with urllib.request.urlopen(f"http://127.0.0.1:{PORT}/health", timeout=2) as r:
                return bool(r.status == 200)
        except OSError:
            return False

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
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{PORT}", timeout=10) as client:
        yield client


async def answer(request: DataRequestForwarded) -> dict[str, Any]:
    return {"alive": True}


async def test_killing_the_exchange_mid_load_loses_and_doubles_nothing(
    exchange: ExchangeProcess,
    http: httpx.AsyncClient,
    kafka_admin: KafkaAccess,
    agency_kafka: Callable[[str], Awaitable[KafkaAccess]],
    database_urls: Mapping[str, str],
) -> None:
    await until_healthy(exchange)
    run = run_id()
    issuer = Issuer()
    consumer, provider = AgencySystem(f"e2e-ss-{run}"), AgencySystem(f"e2e-cr-{run}")
    await announce_world(kafka_admin, database_urls["exchange"], issuer, consumer, provider)
    data_service = await register_data_service(
        http, issuer, provider, "vital-status", timeout_ms=120_000
    )
    await grant(http, issuer, consumer, data_service)
    exchange_keys = ExchangeKeys(f"http://127.0.0.1:{PORT}")

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
                await asyncio.to_thread(exchange.kill)
                exchange.start()
            transaction_id, future = await client.send(
                data_service, "benefit-eligibility", {"citizen": CITIZEN}, citizen=CITIZEN
            )
            futures[transaction_id] = future
            await asyncio.sleep(1 / RATE_PER_SECOND)
        await until_healthy(exchange)
        outcomes = await asyncio.wait_for(asyncio.gather(*futures.values()), 240)
    await worker.stop()
    await asyncio.wait_for(worker_task, 30)

    assert Counter(o.outcome for o in outcomes) == {"answered": REQUESTS}
    assert exchange.log_path.read_text().count("service started") == 2
    ours = {str(t) for t in futures}

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

    outcomes_topic = channel(Topic.AGENCY_OUTCOMES, consumer.code)
    for topic in (outcomes_topic, Topic.EXCHANGE_TRANSACTIONS.value):
        records = await read_all(
            kafka_admin, topic, until=lambda rs: len(count(rs)) >= REQUESTS, timeout=60
        )
        per_transaction = count(records)
        assert set(per_transaction) == ours, topic
        assert set(per_transaction.values()) == {1}, topic
