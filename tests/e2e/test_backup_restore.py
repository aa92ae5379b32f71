"""A backup taken under load, restored into an empty database after the original is
lost: the exchange catches up from Kafka to the same transactions as before, and its
audit log verifies against its checkpoints, the restore's loss named as such.

An exchange process serves two agencies on the agency package; midway through their
requests `panjereh backup` runs (its offsets, then one pg_dump). Once every request is
answered the exchange stops, and its database counts as lost: `panjereh restore` brings
the backup back into a new database and rewinds the exchange's consumer group to the
backup's offsets. A new exchange on the restored database reads again what came after
the backup; answers refused meanwhile as unknown (read before their request) go back
through `panjereh dlq replay`, as the runbook says.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest
from confluent_kafka import TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._listoffsets import OffsetSpec

from infra.backup import Manifest, committed_offsets_of, restore_backup, take_backup
from infra.dead_letters import chosen, read_dead_letters, replay
from shared.kafka_access import KafkaAccess
from shared.topics import Topic, channel, dead_letter_of
from tests.database import execute_on, fetch_rows
from tests.e2e.exchange_load import ExchangeProcess, audit_records_of, drive, until_healthy
from tests.integration.exchange.helpers import audit_verify, eventually

pytestmark = [pytest.mark.e2e, pytest.mark.timeout(600)]

REQUESTS = 240
BACKUP_AFTER = 120


def on_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture
def restored_database(admin_database_url: str) -> Iterator[str]:
    """A new, empty database on the same cluster; dropped afterwards."""
    name = f"restored_{uuid.uuid4().hex[:8]}"

    asyncio.run(execute_on(admin_database_url, f'CREATE DATABASE "{name}"'))
    try:
        yield name
    finally:
        asyncio.run(
            execute_on(admin_database_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        )


async def statuses(database_url: str, ours: set[str]) -> dict[str, str]:
    connection = await asyncpg.connect(database_url)
    try:
        rows = await connection.fetch(
            "SELECT transaction_id::text AS id, status FROM exchange.transactions"
            " WHERE transaction_id::text = ANY($1::text[])",
            list(ours),
        )
    finally:
        await connection.close()
    return {row["id"]: row["status"] for row in rows}


async def test_a_backup_under_load_restored_after_a_loss_catches_up_from_kafka(
    tmp_path: Path,
    credentials_file: Callable[[str], str],
    database_urls: Mapping[str, str],
    admin_database_url: str,
    restored_database: str,
    kafka_admin: KafkaAccess,
    agency_kafka: Callable[[str], Awaitable[KafkaAccess]],
    http: httpx.AsyncClient,
) -> None:
    folder = tmp_path / "backup"
    original = ExchangeProcess(
        tmp_path / "exchange.log", credentials_file("exchange"), database_urls["exchange"]
    )
    original.start()
    try:
        await until_healthy(original)
        keys = tmp_path / "keys.json"
        keys.write_text(json.dumps((await http.get("/keys")).json()))

        def backup(_: str) -> None:
            take_backup(folder, admin_database_url, kafka_admin, schemas=["exchange"])

        ours, consumer = await drive(
            kafka_admin,
            agency_kafka,
            database_urls["exchange"],
            http,
            backup,
            requests=REQUESTS,
            midway_after=BACKUP_AFTER,
        )

        # The original signs checkpoints of what it logged after the backup before it
        # stops, so that there is something the restore is seen to lose.
        async def anchored() -> bool:
            [row] = await fetch_rows(
                admin_database_url,
                "SELECT bool_and(c.seq >= h.seq) AS all_anchored FROM exchange.audit_head h"
                " JOIN exchange.audit_checkpoint c USING (chain) WHERE h.restored_at IS NULL",
            )
            return bool(row["all_anchored"])

        await eventually(anchored, timeout=60)
    finally:
        original.stop()
    before = await statuses(admin_database_url, ours)
    assert set(before.values()) == {"answered"}
    assert len(before) == REQUESTS
    manifest = Manifest.read(folder)
    assert "exchange" in manifest.offsets

    # The original database is lost; the backup goes into a new one.
    restored_admin = on_database(admin_database_url, restored_database)
    done = await restore_backup(folder, restored_admin, kafka_admin, {})
    assert any(line.startswith("consumer group exchange:") for line in done), done
    at_restore = await statuses(restored_admin, ours)
    assert len(at_restore) < REQUESTS, "the backup holds what came after it"
    # Each chain's head comes back as the backup found it: a record of the original log.
    heads = await fetch_rows(restored_admin, "SELECT chain, seq, hash FROM exchange.audit_head")
    restored_heads = {(row["chain"], row["seq"], row["hash"]) for row in heads if row["seq"]}
    assert restored_heads
    originals = await fetch_rows(
        admin_database_url,
        "SELECT chain, seq, hash FROM exchange.audit_log"
        " WHERE (chain, seq) IN (SELECT * FROM unnest($1::int[], $2::bigint[]))",
        [chain for chain, _, _ in restored_heads],
        [seq for _, seq, _ in restored_heads],
    )
    assert {(row["chain"], row["seq"], row["hash"]) for row in originals} == restored_heads

    # The suite goes on using the original database, whose exchange signs with the same
    # key: the restored exchange gets a key of its own, so that the two histories'
    # checkpoints on the shared topic never pass for each other's. (After a real loss
    # there is one history, and the restored exchange keeps its key.)
    await execute_on(restored_admin, "DELETE FROM exchange.signing_keys")
    restored = ExchangeProcess(
        tmp_path / "restored.log",
        credentials_file("exchange"),
        on_database(database_urls["exchange"], restored_database),
    )
    restored.start()
    try:
        await until_healthy(restored)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{restored.port}") as new:
            new_keys = (await new.get("/keys")).json()["keys"]
        both = json.loads(keys.read_text())
        keys.write_text(json.dumps({"keys": both["keys"] + new_keys}))

        async def caught_up() -> bool:
            return len(await statuses(restored_admin, ours)) == REQUESTS

        await eventually(caught_up, timeout=120)
        provider = consumer.replace("e2e-ss-", "e2e-cr-")
        read = [channel(Topic.AGENCY_REQUESTS, consumer), channel(Topic.AGENCY_ANSWERS, provider)]

        async def read_through() -> bool:
            return await asyncio.to_thread(group_at_end, kafka_admin, "exchange", read)

        await eventually(read_through, timeout=120)
        # Answers read before their request was taken again were refused as unknown:
        # sent back once the requests are in, they find their transactions.
        answers = dead_letter_of(channel(Topic.AGENCY_ANSWERS, provider))
        letters = chosen(
            await read_dead_letters(kafka_admin, [answers]),
            reason="unknown_transaction",
            since=manifest.taken_at,
        )
        sent = await replay(kafka_admin, letters)

        async def settled() -> bool:
            return await statuses(restored_admin, ours) == before

        with contextlib.suppress(AssertionError):
            await eventually(settled, timeout=120)
        after = await statuses(restored_admin, ours)
        # Each ends as it did, those pending at the backup included: their answers
        # reached the broker before their deadlines, however long the restore took.
        assert after == before, f"{Counter(after.values())}; {sent} answers replayed"
    finally:
        restored.stop()

    # Every request and answer audited in the restored log, and the log verifies: the
    # closed chains up to the backup, the new ones after it.
    audited = await audit_records_of(restored_admin, ours)
    kinds: dict[str, set[str]] = {}
    for transaction, kind, _ in audited:
        kinds.setdefault(transaction, set()).add(kind)
    assert set(kinds) == ours
    assert all({"request", "response"} <= of for of in kinds.values()), kinds
    status, out = await audit_verify("exchange", restored_admin, kafka_admin, keys)
    assert status == 0, out
    assert "audit log intact" in out
    # The closed chains name what the original exchange signed after the backup: lost.
    lost = [int(n) for n in re.findall(r"closed by the restore .*?: (\d+) records", out)]
    assert lost, out
    assert sum(lost) > 0, out


def group_at_end(kafka: KafkaAccess, group: str, topics: list[str]) -> bool:
    """Whether `group` has committed to the end of every partition of `topics`."""
    admin = AdminClient(dict(kafka.librdkafka_config()))
    committed = committed_offsets_of(admin, group)
    partitions = {TopicPartition(topic, 0): OffsetSpec.latest() for topic in topics}  # type: ignore[no-untyped-call]
    ends = {
        (tp.topic, tp.partition): future.result().offset
        for tp, future in admin.list_offsets(partitions, request_timeout=30).items()
    }
    return all(committed.get(at, -1) >= end for at, end in ends.items())
