"""The audit log anchored outside the database, on the real broker and database.

The exchange signs checkpoints of its hash chain and publishes them through its outbox on
`exchange.audit-checkpoints`; `panjereh audit verify` holds the chain to them. Each
tampering test builds a log in a schema of its own, with a signing key of its own, and
rewrites it as the database's owner could: every hash redone and the head moved, so the
chain alone holds. The checkpoints name the first record that changed or is missing.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.exchange import storage
from services.exchange.audit import read_checkpoints
from services.exchange.bootstrap import build
from services.exchange.domain.audit import CheckpointPolicy, chain_hash
from services.exchange.settings import ExchangeSettings
from services.exchange.storage import CheckpointStorage, ExchangeStorage
from services.exchange.use_cases import registers
from services.exchange.use_cases.audit import sign_checkpoints
from shared.db import Pool, create_pool
from shared.kafka_access import KafkaAccess
from shared.outbox import OutboxRelay
from shared.sealing import Sealer
from shared.signing import key_id_of
from shared.unit_of_work import transaction
from tests.integration.exchange.helpers import audit_entry, audit_verify, eventually
from tests.schemas import migrated_schema

pytestmark = pytest.mark.integration

SEALER = Sealer(ExchangeSettings().data_key_bytes)
# A checkpoint each four records; never one for time alone, so each test knows its own.
EVERY_FOUR = CheckpointPolicy(every_seconds=3600, every_records=4)


async def append(pool: Pool, count: int) -> None:
    for _ in range(count):
        async with pool.acquire() as connection, connection.transaction():
            await storage.append_audit(connection, audit_entry(), datetime.now(UTC))


async def write_keys(pool: Pool, path: Path) -> Path:
    """The exchange's public keys as its `/keys` serves them, saved to a file."""
    async with transaction(pool, ExchangeStorage) as work:
        keys = await registers.public_keys(work)
    return saved(path, {"keys": [{**jwk, "kid": kid} for kid, jwk in keys]})


def saved(path: Path, jwks: dict[str, Any]) -> Path:
    """A copy of the exchange's public keys, as an operator keeps one."""
    path.write_text(json.dumps(jwks))
    return path


@dataclass
class AnchoredLog:
    """An exchange's audit log in a schema of its own, checkpointed onto the real topic."""

    schema: str
    pool: Pool
    kafka: KafkaAccess
    keys: Path

    async def checkpoint(self) -> None:
        """What the exchange does: sign what is due, then its relay publishes it."""
        async with transaction(self.pool, CheckpointStorage) as work:
            await sign_checkpoints(work, EVERY_FOUR)
        relay = OutboxRelay(
            self.pool, schema=self.schema, kafka=self.kafka, relay_id=f"{self.schema}-relay"
        )
        await relay.publish_pending()
        await relay.stop()
        await relay.run()

    async def records(self, after: int) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT * FROM audit_log WHERE chain = 0 AND seq > $1 ORDER BY seq", after
        )
        return [dict(row) for row in rows]

    async def as_owner(self, *statements: tuple[str, tuple[Any, ...]]) -> None:
        """Run statements with the log's guard switched off, as its owner could."""
        async with self.pool.acquire() as connection:
            await connection.execute("SET session_replication_role = replica")
            try:
                for statement, arguments in statements:
                    await connection.execute(statement, *arguments)
            finally:
                await connection.execute("SET session_replication_role = origin")

    async def verify(self, admin_database_url: str) -> tuple[int, str]:
        return await audit_verify(self.schema, admin_database_url, self.kafka, self.keys)


@pytest.fixture
async def anchored(
    admin_database_url: str, kafka_admin: KafkaAccess, tmp_path: Path
) -> AsyncIterator[AnchoredLog]:
    """Eight records, anchored by two checkpoints (records 1-4 and 5-8)."""
    async with migrated_schema(admin_database_url, "anchor", "exchange") as (schema, pool):
        storage.seal_signing_keys_with(SEALER)  # sign with this schema's key, made now
        try:
            log = AnchoredLog(schema, pool, kafka_admin, await write_keys(pool, tmp_path / "k"))
            for _ in range(2):
                await append(pool, 4)
                await log.checkpoint()
            yield log
        finally:
            storage.seal_signing_keys_with(SEALER)  # forget this schema's key


async def test_an_untampered_chain_verifies_against_the_checkpoints(
    anchored: AnchoredLog, admin_database_url: str
) -> None:
    await append(anchored.pool, 2)  # not anchored yet: no break, only waiting
    status, out = await anchored.verify(admin_database_url)
    assert status == 0, out
    assert "intact: 10 records" in out
    assert "anchored through record 8" in out
    assert "2 records since wait" in out


async def test_a_record_rewritten_with_every_later_hash_redone_is_named(
    anchored: AnchoredLog, admin_database_url: str
) -> None:
    records = await anchored.records(after=2)
    previous = records[0]["previous_hash"]
    statements = []
    for record in records:
        if record["seq"] == 3:
            record["purpose"] = "curiosity"
        record["previous_hash"] = previous
        record["hash"] = previous = chain_hash(previous, record)
        statements.append(
            (
                "UPDATE audit_log SET purpose = $2, previous_hash = $3, hash = $4 WHERE seq = $1",
                (record["seq"], record["purpose"], record["previous_hash"], record["hash"]),
            )
        )
    await anchored.as_owner(*statements, ("UPDATE audit_head SET hash = $1", (previous,)))
    status, out = await anchored.verify(admin_database_url)
    assert status == 2, out
    assert "BROKEN at record 3:" in out
    assert "not the one the exchange signed" in out


async def cut_after_fifth(anchored: AnchoredLog) -> None:
    """Delete every record after the fifth and move the head back to it, as the owner."""
    [fifth] = (await anchored.records(after=4))[:1]
    await anchored.as_owner(
        ("DELETE FROM audit_log WHERE seq > 5", ()),
        ("UPDATE audit_head SET seq = 5, hash = $1", (fifth["hash"],)),
    )


async def test_a_tail_cut_with_the_head_moved_back_is_named_at_the_first_missing_record(
    anchored: AnchoredLog, admin_database_url: str
) -> None:
    await cut_after_fifth(anchored)
    status, out = await anchored.verify(admin_database_url)
    assert status == 2, out
    assert "BROKEN at record 6: record 6 is missing" in out
    assert "signed it through record 8" in out


async def test_a_head_moved_back_with_a_new_history_written_after_it_is_named(
    anchored: AnchoredLog, admin_database_url: str
) -> None:
    await cut_after_fifth(anchored)
    await append(anchored.pool, 3)  # the exchange goes on from the moved head
    status, out = await anchored.verify(admin_database_url)
    assert status == 2, out
    assert "BROKEN at record 6:" in out
    assert "not the one the exchange signed" in out


async def append_to_a_second_chain(pool: Pool, count: int) -> None:
    """`count` records appended while another transaction holds chain 0."""
    async with pool.acquire() as holder, holder.transaction():
        await storage.append_audit(holder, audit_entry(), datetime.now(UTC))
        for _ in range(count):
            async with pool.acquire() as connection, connection.transaction():
                chain, _ = await storage.append_audit(connection, audit_entry(), datetime.now(UTC))
                assert chain == 1


async def test_each_chain_is_anchored_and_one_removed_whole_is_named(
    anchored: AnchoredLog, admin_database_url: str
) -> None:
    await append_to_a_second_chain(anchored.pool, 4)  # and record 9 of chain 0
    await anchored.checkpoint()  # chain 1's four records; chain 0's one waits for more
    status, out = await anchored.verify(admin_database_url)
    assert status == 0, out
    assert "intact: 13 records in 2 chains" in out
    assert "chain 0: anchored through record 8" in out
    assert "chain 1: anchored through record 4 of chain 1" in out

    await anchored.as_owner(
        ("DELETE FROM audit_log WHERE chain = 1", ()),
        ("DELETE FROM audit_head WHERE chain = 1", ()),
    )
    status, out = await anchored.verify(admin_database_url)
    assert status == 2, out
    assert "BROKEN at record 1 of chain 1: record 1 of chain 1 is missing" in out
    assert "signed it through record 4 of chain 1" in out


async def test_the_running_exchange_anchors_its_log_and_verify_holds_it_to_that(
    credentials_file: Callable[[str], str],
    database_urls: Mapping[str, str],
    admin_database_url: str,
    kafka_admin: KafkaAccess,
    tmp_path: Path,
) -> None:
    storage.seal_signing_keys_with(SEALER)  # the exchange's own key, not a scratch one
    settings = ExchangeSettings(
        kafka_credentials_file=credentials_file("exchange"),
        database_url=database_urls["exchange"],
    ).model_copy(update={"audit_checkpoint_seconds": 0.2})
    app = build(settings)
    async with app.router.lifespan_context(app):
        pool = await create_pool(database_urls["exchange"], "exchange", max_size=1)
        try:
            async with pool.acquire() as connection, connection.transaction():
                chain, head = await storage.append_audit(
                    connection, audit_entry(), datetime.now(UTC)
                )
        finally:
            await pool.close()
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://exchange") as http:
            keys = (await http.get("/keys")).json()
        kids = {key["kid"] for key in keys["keys"]}

        async def checkpointed() -> bool:
            found, _ = await read_checkpoints(kafka_admin)
            return any(
                c.chain == chain and c.seq >= head and key_id_of(c.signature) in kids for c in found
            )

        await eventually(checkpointed, timeout=60)
    copy = saved(tmp_path / "keys.json", keys)
    status, out = await audit_verify("exchange", admin_database_url, kafka_admin, copy)
    assert status == 0, out
    assert "anchored through record" in out
