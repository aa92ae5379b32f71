"""Load on the exchange for the e2e tests that break things under it: exchange processes
they start and kill, two agencies on the agency package driving requests through it, and
the checks that every request ended exactly once."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
from panjereh_agency import ExchangeClient, ExchangeKeys, ProviderWorker

from shared.events.exchange import DataRequestForwarded
from shared.kafka_access import KafkaAccess
from shared.topics import Topic, channel
from tests.database import fetch_rows
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


async def until_healthy(process: ExchangeProcess) -> None:
    async def check() -> bool:
        return await asyncio.to_thread(process.healthy)

    await eventually(check, timeout=90)


async def answer(request: DataRequestForwarded) -> dict[str, Any]:
    return {"alive": True}


async def drive(
    kafka_admin: KafkaAccess,
    agency_kafka: Callable[[str], Awaitable[KafkaAccess]],
    database_url: str,
    http: httpx.AsyncClient,
    midway: Callable[[str], None],
    *,
    requests: int = REQUESTS,
    rate_per_second: float = RATE_PER_SECOND,
    midway_after: int = KILL_AFTER,
    more: Callable[[int], bool] | None = None,
) -> tuple[set[str], str]:
    """Two agencies send `requests` requests through the exchange at `http` (or, given
    `more`, as long as `more(number sent)` says), and `midway` runs (given the consumer's
    requests channel) after `midway_after` of them; every outcome is answered. The
    transaction ids, and the consumer's code."""
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
        index = 0
        while more(index) if more is not None else index < requests:
            if index == midway_after:
                await asyncio.to_thread(midway, channel(Topic.AGENCY_REQUESTS, consumer.code))
            transaction_id, future = await client.send(
                data_service, "benefit-eligibility", {"citizen": CITIZEN}, citizen=CITIZEN
            )
            futures[transaction_id] = future
            index += 1
            await asyncio.sleep(1 / rate_per_second)
        outcomes = await asyncio.wait_for(asyncio.gather(*futures.values()), 240)
    await worker.stop()
    await asyncio.wait_for(worker_task, 30)
    assert Counter(o.outcome for o in outcomes) == {"answered": len(futures)}
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


def pid_of(member: str) -> int:
    """The process of a group member, from its client id (`shared.kafka.member_client_id`)."""
    return int(member.rsplit("-", 1)[1])


async def audit_records_of(database_url: str, ours: set[str]) -> list[tuple[str, str, int]]:
    """Each of these transactions' audit records: its id, kind and chain."""
    rows = await fetch_rows(
        database_url,
        "SELECT transaction_id::text, kind, chain FROM exchange.audit_log"
        " WHERE transaction_id = ANY($1::uuid[])",
        list(ours),
    )
    return [(row[0], row[1], row[2]) for row in rows]
