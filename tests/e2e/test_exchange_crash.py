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

import json
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path

import httpx
import pytest

from shared.kafka_access import KafkaAccess
from tests.e2e.exchange_load import (
    PORT,
    ExchangeProcess,
    assert_each_published_once,
    audit_records_of,
    drive,
    pid_of,
    until_healthy,
)
from tests.groups import group_admin, holders
from tests.integration.exchange.helpers import audit_verify

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(420)]


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
