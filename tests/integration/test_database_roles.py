"""Least privilege in PostgreSQL: passwords, one role per service, each in its own schema.

The session's cluster is checked as `panjereh init` left it; a cluster made the way older
releases made it (`trust`, one superuser role owning everything) is moved to passwords
and per-service roles by starting it and running init, with its data kept.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import uuid
from collections.abc import Iterator, Mapping
from pathlib import Path

import asyncpg
import pytest

from infra.platform.postgres import HBA, PostgresCluster, bin_dir
from infra.platform.provision import InitReport, apply_all_migrations
from shared.db import SERVICES, migrations_for, role_of

pytestmark = pytest.mark.integration


async def _rolled_back(dsn: str, *statements: str) -> None:
    """Run statements in one transaction that is rolled back whatever happens."""
    connection = await asyncpg.connect(dsn)
    try:
        transaction = connection.transaction()
        await transaction.start()
        try:
            for statement in statements:
                await connection.execute(statement)
        finally:
            await transaction.rollback()
    finally:
        await connection.close()


@pytest.mark.parametrize("service", SERVICES)
async def test_a_service_role_is_no_superuser_and_owns_its_schema(
    database_urls: Mapping[str, str], service: str
) -> None:
    connection = await asyncpg.connect(database_urls[service])
    try:
        role = await connection.fetchrow(
            "SELECT current_user AS name, rolsuper, rolcreaterole, rolcreatedb, rolreplication,"
            " rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        foreign = await connection.fetchval(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = $1 AND c.relkind IN ('r', 'S', 'v')"
            " AND pg_get_userbyid(c.relowner) NOT IN ($2, 'exchange_audit')",
            service,
            role_of(service),
        )
    finally:
        await connection.close()
    # Everything in its own schema: create, fill, change, drop.
    table = f"{service}.scratch_{uuid.uuid4().hex[:8]}"
    await _rolled_back(
        database_urls[service],
        f"CREATE TABLE {table} (x int)",
        f"INSERT INTO {table} VALUES (1)",
        f"ALTER TABLE {table} ADD COLUMN y text",
        f"DROP TABLE {table}",
        f"DELETE FROM {service}.processed_events WHERE consumer = 'nobody'",
    )
    assert role["name"] == role_of(service)
    attributes = ("rolsuper", "rolcreaterole", "rolcreatedb", "rolreplication", "rolbypassrls")
    assert [name for name in attributes if role[name]] == []
    assert foreign == 0


@pytest.mark.parametrize("service", SERVICES)
@pytest.mark.parametrize(
    "statement",
    [
        "SELECT count(*) FROM {other}.outbox",
        "INSERT INTO {other}.processed_events (consumer, event_id) VALUES ('x', gen_random_uuid())",
        "CREATE TABLE {other}.intruder (x int)",
        "DROP TABLE {other}.outbox",
        "CREATE SCHEMA intruder",
        "CREATE TABLE public.intruder (x int)",
        "CREATE ROLE intruder",
        "SET session_replication_role = replica",
        "SET ROLE postgres",
    ],
)
async def test_a_service_role_reaches_no_other_schema(
    database_urls: Mapping[str, str], service: str, statement: str
) -> None:
    other = next(s for s in SERVICES if s != service)
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await _rolled_back(database_urls[service], statement.format(other=other))


async def test_roles_log_in_only_with_their_password(database_urls: Mapping[str, str]) -> None:
    dsn = database_urls["identity"]
    without = dsn.replace(dsn.split("@")[0], "postgresql://identity")
    wrong = dsn.replace(dsn.split("@")[0], "postgresql://identity:not-the-password")
    for attempt in (without, wrong):
        with pytest.raises(
            (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)
        ):
            await (await asyncpg.connect(attempt)).close()


async def test_init_twice_changes_nothing_the_second_time(
    admin_database_url: str, infrastructure: object
) -> None:
    passwords = infrastructure.postgres.passwords().services  # type: ignore[attr-defined]
    report = InitReport()
    await apply_all_migrations(admin_database_url, report, passwords)
    assert report.migrations == {service: [] for service in SERVICES}
    assert report.warnings == []


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture
def legacy_cluster() -> Iterator[PostgresCluster]:
    """A cluster as older releases made it: `trust`, one superuser `panjereh` owning all."""
    from infra.platform.postgres import _wrap
    from infra.platform.processes import run

    home = Path(tempfile.mkdtemp(prefix="panjereh-legacy-"))
    home.chmod(0o755)  # the postgres system user must enter it when we are root
    cluster = PostgresCluster(home, _free_port())
    cluster._prepare_dirs()
    run(
        _wrap(
            [
                str(bin_dir() / "initdb"),
                *("-D", str(cluster.data_dir), "-U", "postgres", "--auth=trust"),
                *("--encoding=UTF8", "--locale=C.UTF-8"),
            ]
        )
    )
    with (cluster.data_dir / "postgresql.conf").open("a") as conf:
        conf.write("listen_addresses = '127.0.0.1'\nunix_socket_directories = ''\nfsync = off\n")
    try:
        yield cluster
    finally:
        cluster.stop()
        shutil.rmtree(home, ignore_errors=True)


#: The exchange's migrations that need the roles this release makes (they hand objects to
#: `exchange_audit`): newer than the older releases, so they run at the upgrade.
NEWER_EXCHANGE_MIGRATIONS = (
    "0002_audit_log_owner.sql",
    "0005_audit_chains.sql",
    "0006_audit_restores.sql",
)


async def _as_older_releases_did(cluster: PostgresCluster) -> None:
    """Role and database `panjereh`, every service's migrations applied as that role."""
    trusted = f"postgresql://postgres@127.0.0.1:{cluster.port}/postgres"
    connection = await asyncpg.connect(trusted)
    try:
        await connection.execute("CREATE ROLE panjereh LOGIN SUPERUSER")
        await connection.execute("CREATE DATABASE panjereh OWNER panjereh")
    finally:
        await connection.close()
    connection = await asyncpg.connect(f"postgresql://panjereh@127.0.0.1:{cluster.port}/panjereh")
    try:
        for service in SERVICES:
            await connection.execute(f"CREATE SCHEMA {service}")
            await connection.execute(
                f"CREATE TABLE {service}.schema_migrations (name text PRIMARY KEY,"
                " applied_at timestamptz NOT NULL DEFAULT now())"
            )
            for name, sql in migrations_for(service):
                if name in NEWER_EXCHANGE_MIGRATIONS:
                    continue
                async with connection.transaction():
                    await connection.execute(f"SET LOCAL search_path TO {service}")
                    await connection.execute(sql)
                    await connection.execute(
                        f"INSERT INTO {service}.schema_migrations (name) VALUES ($1)", name
                    )
        await connection.execute(
            "INSERT INTO identity.issuer_keys (kid, private_jwk, public_jwk, not_before)"
            """ VALUES ('old-key', '{"kty": "EC", "d": "secret"}', '{"kty": "EC"}', now())"""
        )
    finally:
        await connection.close()


async def test_a_cluster_made_with_trust_moves_to_passwords_and_service_roles(
    legacy_cluster: PostgresCluster,
) -> None:
    cluster = legacy_cluster
    cluster._pg_ctl("start", "-w", "-l", str(cluster.log_file), "-o", f"-p {cluster.port}")
    await _as_older_releases_did(cluster)
    cluster.stop()

    cluster.start()  # as this release does (it blocks; nothing else runs meanwhile)
    assert cluster.hba_file.read_text() == HBA
    passwords = cluster.passwords()
    report = InitReport()
    await apply_all_migrations(cluster.admin_url, report, passwords.services)
    assert report.migrations["exchange"] == list(NEWER_EXCHANGE_MIGRATIONS)

    with pytest.raises(
        (asyncpg.InvalidPasswordError, asyncpg.InvalidAuthorizationSpecificationError)
    ):
        await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{cluster.port}/panjereh")
    connection = await asyncpg.connect(cluster.admin_url)
    try:
        assert not await connection.fetchval("SELECT 1 FROM pg_roles WHERE rolname = 'panjereh'")
        owners = {
            (row["schema"], row["owner"])
            for row in await connection.fetch(
                "SELECT n.nspname AS schema, pg_get_userbyid(c.relowner) AS owner"
                " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = ANY($1::text[]) AND c.relkind = 'r'",
                list(SERVICES),
            )
        }
        strays = await connection.fetch(
            "SELECT p.oid::regprocedure::text FROM pg_proc p"
            " WHERE p.pronamespace::regnamespace::text = ANY($1::text[])"
            " AND pg_get_userbyid(p.proowner) <> p.pronamespace::regnamespace::text"
            " AND pg_get_userbyid(p.proowner) <> 'exchange_audit'"
            " UNION ALL SELECT t.oid::regtype::text FROM pg_type t"
            " WHERE t.typnamespace::regnamespace::text = ANY($1::text[])"
            " AND pg_get_userbyid(t.typowner) <> t.typnamespace::regnamespace::text"
            " AND pg_get_userbyid(t.typowner) <> 'exchange_audit'",
            list(SERVICES),
        )
        audit = await connection.fetch(
            "SELECT pg_get_userbyid(relowner) FROM pg_class"
            " WHERE oid IN ('exchange.audit_log'::regclass, 'exchange.audit_head'::regclass)"
        )
    finally:
        await connection.close()
    assert owners == {(s, role_of(s)) for s in SERVICES} | {("exchange", "exchange_audit")}
    assert [row[0] for row in audit] == ["exchange_audit", "exchange_audit"]
    assert [row[0] for row in strays] == []

    # The data is still there, and the service's own role reads it.
    identity = await asyncpg.connect(cluster.service_url("identity"))
    try:
        assert await identity.fetchval("SELECT kid FROM identity.issuer_keys") == "old-key"
    finally:
        await identity.close()
