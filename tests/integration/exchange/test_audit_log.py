"""The audit log on the real database: append-only, and tampering is detected by the chain.

Each test builds the exchange's tables in a schema of its own, so tampering here never
touches the log other tests write.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest

from services.exchange import storage
from services.exchange.domain import AuditEntry
from shared.db import Pool, create_pool, migrations_for

pytestmark = pytest.mark.integration


@pytest.fixture
async def audit_schema(database_url: str) -> AsyncIterator[tuple[str, Pool]]:
    schema = f"audit_{uuid.uuid4().hex[:10]}"
    pool = await create_pool(database_url, schema, max_size=2)
    async with pool.acquire() as connection:
        await connection.execute(f'CREATE SCHEMA "{schema}"')
        for _, sql in migrations_for("exchange"):
            await connection.execute(sql)
    try:
        yield schema, pool
    finally:
        async with pool.acquire() as connection:
            await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()


async def append(pool: Pool, count: int) -> None:
    for index in range(count):
        entry = AuditEntry(
            transaction_id=uuid.uuid4(),
            kind="request",
            outcome="forwarded",
            consumer="social-security",
            provider="civil-registration",
            data_service="civil-registration.vital-status",
            purpose="benefit-eligibility",
            legal_basis="National Data and Information Law, art. 5",
            citizen=f"{index:064x}",
            reason=None,
            content_digest="ab" * 32,
            signature="header..signature",
        )
        async with pool.acquire() as connection, connection.transaction():
            await storage.append_audit(connection, entry, datetime.now(UTC))


async def verify(schema: str) -> tuple[int, str]:
    """Run `panjereh audit verify` as an operator would: its exit status and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "infra.cli",
        "audit",
        "verify",
        "--schema",
        schema,
        stdout=asyncio.subprocess.PIPE,
        env=os.environ.copy(),
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_an_untouched_log_verifies(
    audit_schema: tuple[str, Pool],
) -> None:
    schema, pool = audit_schema
    await append(pool, 5)
    status, out = await verify(schema)
    assert status == 0
    assert "5 records" in out


async def test_the_database_refuses_to_change_or_remove_audit_records(
    audit_schema: tuple[str, Pool],
) -> None:
    _, pool = audit_schema
    await append(pool, 2)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("UPDATE audit_log SET purpose = 'curiosity' WHERE seq = 1")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("DELETE FROM audit_log WHERE seq = 2")


async def test_a_superusers_update_of_one_record_is_named_by_audit_verify(
    audit_schema: tuple[str, Pool],
) -> None:
    schema, pool = audit_schema
    await append(pool, 6)
    async with pool.acquire() as connection:
        # A superuser can switch the guard off; the chain must still tell.
        await connection.execute("SET session_replication_role = replica")
        await connection.execute("UPDATE audit_log SET purpose = 'curiosity' WHERE seq = 4")
        await connection.execute("SET session_replication_role = origin")
    status, out = await verify(schema)
    assert status != 0
    assert "record 4" in out


async def test_a_removed_record_is_named_by_audit_verify(
    audit_schema: tuple[str, Pool],
) -> None:
    schema, pool = audit_schema
    await append(pool, 5)
    async with pool.acquire() as connection:
        await connection.execute("SET session_replication_role = replica")
        await connection.execute("DELETE FROM audit_log WHERE seq = 2")
        await connection.execute("SET session_replication_role = origin")
    status, out = await verify(schema)
    assert status != 0
    assert "record 2" in out
