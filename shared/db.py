"""PostgreSQL access: one pool per service, confined to the service's own schema.

Each service logs in as its own role (`role_of`), which owns its schema's objects and may
reach no other schema. Migrations are plain SQL files applied in name order: first the
platform's own (outbox and inbox, in `shared/migrations`), then the service's
(`services/<name>/migrations`). Each runs in its own transaction with the service's schema
as search_path and, unless its first line is `ADMIN_MIGRATION`, as the service's role; an
advisory lock keeps two processes from migrating one schema at once.
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable

import asyncpg
from asyncpg import Connection, Pool

SERVICES = ("identity", "catalog", "exchange", "metrics")

#: First line of a migration that runs as the administrator, not as the service's role:
#: one that hands objects to a role the service's own role may not become.
ADMIN_MIGRATION = "-- migrate as: administrator"

__all__ = [
    "ADMIN_MIGRATION",
    "SERVICES",
    "Connection",
    "Pool",
    "apply_migrations",
    "create_pool",
    "migrations_for",
    "role_of",
]


def role_of(service: str) -> str:
    """The PostgreSQL role a service logs in as (and that owns its schema's objects)."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    return service


async def _init_connection(connection: asyncpg.Connection) -> None:
    await connection.set_type_codec(
        "jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )
    await connection.set_type_codec(
        "json", encoder=json.dumps, decoder=json.loads, schema="pg_catalog"
    )


async def _reset_if_left_in_transaction(connection: asyncpg.Connection) -> None:
    """Roll back what a released connection left open; nothing else.

    asyncpg's default reset (unlock advisory locks, close cursors, unlisten, reset
    settings) costs a round trip on every release. Pooled connections keep no session
    state when they go back: advisory locks are transaction-scoped, except the outbox
    relay's lease, which it unlocks (or closes the connection) before it releases the
    connection it held, listener and all, for its whole run; migrations use a connection
    of their own. A transaction left open (a cancelled request) still ends.
    """
    if connection.is_in_transaction():
        await connection.reset()


async def create_pool(dsn: str, schema: str, *, min_size: int = 1, max_size: int = 10) -> Pool:
    """A pool whose connections see only `schema` (and pg_catalog) unless they qualify names."""
    pool: Pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_reset_if_left_in_transaction,
        server_settings={"search_path": schema, "application_name": f"panjereh-{schema}"},
    )
    return pool


def _sql_files(package: str) -> list[Traversable]:
    folder = resources.files(package) / "migrations"
    if not folder.is_dir():
        return []
    return sorted((f for f in folder.iterdir() if f.name.endswith(".sql")), key=lambda f: f.name)


def migrations_for(service: str) -> list[tuple[str, str]]:
    """(name, sql) of every migration of a service, in the order they apply."""
    if service not in SERVICES:
        raise ValueError(f"unknown service {service!r}")
    found = [(f"shared/{f.name}", f.read_text("utf-8")) for f in _sql_files("shared")]
    found += [(f.name, f.read_text("utf-8")) for f in _sql_files(f"services.{service}")]
    return found


async def apply_migrations(dsn: str, service: str) -> list[str]:
    """Apply the service's pending migrations to its own schema; returns the names applied.

    `dsn` is the administrator's: the service's role must exist (`panjereh init` makes
    it); each migration becomes that role (`SET LOCAL ROLE`), so everything it creates
    belongs to the service, except those marked `ADMIN_MIGRATION`.
    """
    schema, role = service, role_of(service)
    applied: list[str] = []
    connection: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        # Stable across processes: the lock key is derived in SQL from the schema name.
        await connection.execute(
            "SELECT pg_advisory_lock(hashtext('panjereh-migrate-' || $1))", schema
        )
        try:
            if not await connection.fetchval(
                "SELECT 1 FROM pg_namespace WHERE nspname = $1", schema
            ):
                await connection.execute(f'CREATE SCHEMA "{schema}" AUTHORIZATION "{role}"')
            async with connection.transaction():
                await connection.execute(f'SET LOCAL ROLE "{role}"')
                await connection.execute(
                    f'CREATE TABLE IF NOT EXISTS "{schema}".schema_migrations ('
                    " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
                )
            done = {
                row["name"]
                for row in await connection.fetch(f'SELECT name FROM "{schema}".schema_migrations')
            }
            for name, sql in migrations_for(service):
                if name in done:
                    continue
                async with connection.transaction():
                    if not sql.startswith(ADMIN_MIGRATION):
                        await connection.execute(f'SET LOCAL ROLE "{role}"')
                    await connection.execute(f'SET LOCAL search_path TO "{schema}"')
                    await connection.execute(sql)
                    await connection.execute(
                        f'INSERT INTO "{schema}".schema_migrations (name) VALUES ($1)', name
                    )
                applied.append(name)
        finally:
            await connection.execute(
                "SELECT pg_advisory_unlock(hashtext('panjereh-migrate-' || $1))", schema
            )
    finally:
        await connection.close()
    return applied
