"""PostgreSQL access: one pool per service, confined to the service's own schema.

Migrations are plain SQL files applied in name order: first the platform's own (outbox
and inbox, in `shared/migrations`), then the service's (`services/<name>/migrations`).
Each runs in its own transaction with the service's schema as search_path; an advisory
lock keeps two processes from migrating one schema at once.
"""

from __future__ import annotations

import json
from importlib import resources
from importlib.resources.abc import Traversable

import asyncpg
from asyncpg import Connection, Pool

SERVICES = ("identity", "catalog", "exchange", "metrics")

__all__ = ["SERVICES", "Connection", "Pool", "apply_migrations", "create_pool", "migrations_for"]


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
    settings) costs a round trip on every release. Pooled connections never keep session
    state here: advisory locks are transaction-scoped, listeners and migrations use
    connections of their own. A transaction left open (a cancelled request) still ends.
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
    """Apply the service's pending migrations to its own schema; returns the names applied."""
    schema = service
    applied: list[str] = []
    connection: asyncpg.Connection = await asyncpg.connect(dsn)
    try:
        # Stable across processes: the lock key is derived in SQL from the schema name.
        await connection.execute(
            "SELECT pg_advisory_lock(hashtext('panjereh-migrate-' || $1))", schema
        )
        try:
            await connection.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
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
