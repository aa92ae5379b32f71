"""The audit log on the real database: append-only, and tampering is detected by the chain.

Each tampering test builds the exchange's tables in a schema of its own, as the superuser,
so tampering here never touches the log other tests write. The exchange's own role is
tried on the real log, each attempt in a transaction that is rolled back.
"""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator, Mapping
from datetime import UTC, datetime

import asyncpg
import pytest

from services.exchange import storage
from services.exchange.domain.audit import AuditEntry
from shared.db import Pool, create_pool
from tests.integration.exchange.helpers import audit_entry
from tests.schemas import migrated_schema

pytestmark = pytest.mark.integration


@pytest.fixture
async def audit_schema(admin_database_url: str) -> AsyncIterator[tuple[str, Pool]]:
    async with migrated_schema(admin_database_url, "audit", "exchange") as schema_and_pool:
        yield schema_and_pool


async def append(pool: Pool, count: int) -> None:
    for index in range(count):
        async with pool.acquire() as connection, connection.transaction():
            await storage.append_audit(
                connection, audit_entry(citizen=f"{index:064x}"), datetime.now(UTC)
            )


async def append_beside(pool: Pool, count: int) -> list[int]:
    """Append `count` records while another transaction holds the lowest chain (and has
    appended one record to it); the chains the `count` took."""
    async with pool.acquire() as holder, holder.transaction():
        await storage.append_audit(holder, audit_entry(), datetime.now(UTC))
        chains = []
        for index in range(count):
            async with pool.acquire() as connection, connection.transaction():
                chain, _ = await asyncio.wait_for(
                    storage.append_audit(
                        connection, audit_entry(citizen=f"{index:064x}"), datetime.now(UTC)
                    ),
                    timeout=10,
                )
                chains.append(chain)
    return chains


async def verify(schema: str, database_url: str) -> tuple[int, str]:
    """Run `panjereh audit verify` as an operator would: its exit status and output."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "infra.cli",
        "audit",
        "verify",
        "--schema",
        schema,
        # Only the chain here: its anchoring is test_audit_anchoring's.
        "--unanchored",
        stdout=asyncio.subprocess.PIPE,
        env=os.environ | {"PANJEREH_DATABASE_URL": database_url},
    )
    out, _ = await process.communicate()
    assert process.returncode is not None
    return process.returncode, out.decode()


async def test_an_untouched_log_verifies(
    audit_schema: tuple[str, Pool], admin_database_url: str
) -> None:
    schema, pool = audit_schema
    await append(pool, 5)
    status, out = await verify(schema, admin_database_url)
    assert status == 0
    assert "5 records" in out


async def heads(pool: Pool) -> dict[int, int]:
    return {row["chain"]: row["seq"] for row in await pool.fetch("SELECT * FROM audit_head")}


async def test_appends_running_at_once_take_chains_of_their_own_and_every_chain_verifies(
    audit_schema: tuple[str, Pool], admin_database_url: str
) -> None:
    schema, pool = audit_schema
    await append(pool, 3)
    # Chain 0 held by a transaction still open: the others neither wait nor fail.
    assert await append_beside(pool, 2) == [1, 1]
    await append(pool, 2)  # chain 0 is free again, and first
    assert await heads(pool) == {0: 6, 1: 2}
    status, out = await verify(schema, admin_database_url)
    assert status == 0, out
    assert "intact: 8 records in 2 chains" in out


async def test_tampering_in_a_later_chain_is_named_with_its_chain(
    audit_schema: tuple[str, Pool], admin_database_url: str
) -> None:
    schema, pool = audit_schema
    await append_beside(pool, 3)
    async with pool.acquire() as connection:
        await connection.execute("SET session_replication_role = replica")
        await connection.execute(
            "UPDATE audit_log SET purpose = 'curiosity' WHERE chain = 1 AND seq = 2"
        )
    status, out = await verify(schema, admin_database_url)
    assert status == 2, out
    assert "BROKEN at record 2 of chain 1: its content does not match its hash" in out


async def test_a_chain_begins_only_at_its_genesis(audit_schema: tuple[str, Pool]) -> None:
    _, pool = audit_schema
    # A head that claims records nobody appended would hide a chain's missing start.
    with pytest.raises(asyncpg.RaiseError, match="genesis"):
        await pool.execute("INSERT INTO audit_head (chain, seq, hash) VALUES (7, 5, $1)", "ab" * 32)
    with pytest.raises(asyncpg.RaiseError, match="genesis"):
        await pool.execute("INSERT INTO audit_head (chain, seq, hash) VALUES (7, 0, $1)", "ab" * 32)
    await pool.execute("INSERT INTO audit_head (chain, seq, hash) VALUES (7, 0, $1)", "0" * 64)


async def test_the_database_refuses_to_change_or_remove_audit_records(
    audit_schema: tuple[str, Pool],
) -> None:
    _, pool = audit_schema
    await append(pool, 2)
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("UPDATE audit_log SET purpose = 'curiosity' WHERE seq = 1")
    with pytest.raises(asyncpg.RaiseError, match="append-only"):
        await pool.execute("DELETE FROM audit_log WHERE seq = 2")


@pytest.mark.parametrize(
    ("tampering", "named"),
    [
        ("UPDATE audit_log SET purpose = 'curiosity' WHERE seq = 4", "record 4"),
        ("DELETE FROM audit_log WHERE seq = 2", "record 2"),
    ],
    ids=["an updated record", "a removed record"],
)
async def test_a_superusers_tampering_with_one_record_is_named_by_audit_verify(
    audit_schema: tuple[str, Pool], admin_database_url: str, tampering: str, named: str
) -> None:
    schema, pool = audit_schema
    await append(pool, 6)
    async with pool.acquire() as connection:
        # A superuser can switch the guard off; the chain must still tell.
        await connection.execute("SET session_replication_role = replica")
        await connection.execute(tampering)
        await connection.execute("SET session_replication_role = origin")
    status, out = await verify(schema, admin_database_url)
    assert status != 0
    assert named in out


# What the exchange's own role might try against the real log, to rewrite history or to
# switch the guard off first. Each must be refused by PostgreSQL itself.
ATTEMPTS_OF_THE_EXCHANGE_ROLE = {
    "update": "UPDATE audit_log SET purpose = 'curiosity'",
    "delete": "DELETE FROM audit_log",
    "truncate": "TRUNCATE audit_log",
    "upsert": "INSERT INTO audit_log SELECT * FROM audit_log ON CONFLICT (chain, seq)"
    " DO UPDATE SET purpose = 'curiosity'",
    "drop table": "DROP TABLE audit_log",
    "drop schema": "DROP SCHEMA exchange CASCADE",
    "alter table": "ALTER TABLE audit_log ADD COLUMN note text",
    "rename table": "ALTER TABLE audit_log RENAME TO audit_log_old",
    "take ownership": "ALTER TABLE audit_log OWNER TO exchange",
    "disable trigger": "ALTER TABLE audit_log DISABLE TRIGGER audit_log_append_only",
    "disable all triggers": "ALTER TABLE audit_log DISABLE TRIGGER ALL",
    "replica-only trigger": "ALTER TABLE audit_log ENABLE REPLICA TRIGGER audit_log_append_only",
    "drop trigger": "DROP TRIGGER audit_log_append_only ON audit_log",
    "drop truncate trigger": "DROP TRIGGER audit_log_no_truncate ON audit_log",
    "replace guard": "CREATE OR REPLACE FUNCTION audit_log_is_append_only() RETURNS trigger"
    " LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$",
    "drop guard": "DROP FUNCTION audit_log_is_append_only() CASCADE",
    "own trigger": "CREATE TRIGGER sneak BEFORE INSERT ON audit_log FOR EACH ROW"
    " EXECUTE FUNCTION audit_log_is_append_only()",
    "replication role": "SET session_replication_role = replica",
    "become the owner": "SET ROLE exchange_audit",
    "delete the head": "DELETE FROM audit_head",
    "truncate the head": "TRUNCATE audit_head",
    "drop the head": "DROP TABLE audit_head",
    # Only a restore, as the administrator, closes a chain (and none is reopened).
    "close a chain as restored": "UPDATE audit_head SET restored_at = now()",
    "reopen a restored chain": "UPDATE audit_head SET restored_at = NULL",
    "backdate a restore": "UPDATE audit_head SET backup_taken_at = now()",
}


async def rolled_back(connection: asyncpg.Connection, statement: str) -> None:
    """Run a statement in a transaction that is rolled back whatever happens."""
    transaction = connection.transaction()
    await transaction.start()
    try:
        await connection.execute(statement)
    finally:
        await transaction.rollback()


@pytest.mark.parametrize(
    "statement", ATTEMPTS_OF_THE_EXCHANGE_ROLE.values(), ids=list(ATTEMPTS_OF_THE_EXCHANGE_ROLE)
)
async def test_the_exchange_role_cannot_rewrite_or_unguard_the_audit_log(
    database_urls: Mapping[str, str], statement: str
) -> None:
    connection = await asyncpg.connect(database_urls["exchange"])
    try:
        await connection.execute("SET search_path TO exchange")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await rolled_back(connection, statement)
        guards = await connection.fetch(
            "SELECT tgname, tgenabled::text FROM pg_trigger"
            " WHERE tgrelid = 'exchange.audit_log'::regclass ORDER BY tgname"
        )
    finally:
        await connection.close()
    assert [(g["tgname"], g["tgenabled"]) for g in guards] == [
        ("audit_log_append_only", "O"),
        ("audit_log_no_truncate", "O"),
    ]


async def test_the_exchange_role_cannot_begin_a_chain_closed_as_restored(
    database_urls: Mapping[str, str],
) -> None:
    connection = await asyncpg.connect(database_urls["exchange"])
    try:
        await connection.execute("SET search_path TO exchange")
        with pytest.raises(asyncpg.RaiseError, match="only a restore closes an audit chain"):
            await rolled_back(
                connection,
                "INSERT INTO audit_head (chain, seq, hash, restored_at)"
                " VALUES (100000, 0, repeat('0', 64), now())",
            )
    finally:
        await connection.close()


async def test_the_exchange_role_begins_a_chain_when_every_chain_is_held(
    database_urls: Mapping[str, str],
) -> None:
    """An append that finds every chain held begins one: the exchange's own role may (at
    genesis), as two exchange processes need."""
    pool = await create_pool(database_urls["exchange"], "exchange", max_size=1)
    holders: list[asyncpg.Connection] = []
    try:
        chains = {row["chain"] for row in await pool.fetch("SELECT chain FROM audit_head")}
        for _ in chains:
            holder = await asyncpg.connect(database_urls["exchange"])
            holders.append(holder)
            await holder.execute("SET search_path TO exchange")
            await holder.execute("BEGIN")
            await holder.fetchrow(
                "SELECT chain FROM audit_head ORDER BY chain LIMIT 1 FOR UPDATE SKIP LOCKED"
            )
        async with pool.acquire() as connection:
            transaction = connection.transaction()
            await transaction.start()
            try:
                chain, seq = await asyncio.wait_for(
                    storage.append_audit(connection, audit_entry(), datetime.now(UTC)), timeout=10
                )
                assert chain not in chains
                assert seq == 1
            finally:
                await transaction.rollback()  # the real log keeps no test chain
    finally:
        for holder in holders:
            await holder.close()
        await pool.close()


async def test_the_exchange_role_appends_and_reads_the_audit_log(
    database_urls: Mapping[str, str],
) -> None:
    pool = await create_pool(database_urls["exchange"], "exchange", max_size=1)
    try:
        async with pool.acquire() as connection:
            transaction = connection.transaction()
            await transaction.start()
            try:
                before = {
                    chain: (await storage.audit_head(connection, chain))[0]
                    for chain in await storage.audit_chains(connection)
                }
                entry = AuditEntry(
                    transaction_id=uuid.uuid4(),
                    kind="request",
                    outcome="denied",
                    consumer="social-security",
                    provider=None,
                    data_service="civil-registration.vital-status",
                    purpose="benefit-eligibility",
                    legal_basis=None,
                    citizen=None,
                    reason="no right",
                    content_digest=None,
                    signature=None,
                )
                chain, seq = await storage.append_audit(connection, entry, datetime.now(UTC))
                assert seq == before.get(chain, 0) + 1
                assert (await storage.audit_head(connection, chain))[0] == seq
                appended = await storage.audit_records(connection, seq - 1, 5, chain)
                assert [r["seq"] for r in appended] == [seq]
            finally:
                await transaction.rollback()
            roles = await connection.fetchrow(
                "SELECT rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles"
                " WHERE rolname = current_user"
            )
    finally:
        await pool.close()
    assert not any(roles.values())
