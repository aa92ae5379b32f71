"""Scratch schemas: a service's tables in a schema of their own, dropped afterwards."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from shared.db import Pool, create_pool, migrations_for


@asynccontextmanager
async def migrated_schema(
    admin_database_url: str,
    prefix: str,
    service: str,
    *,
    max_size: int = 2,
    migration_wanted: Callable[[str], bool] = lambda name: True,
) -> AsyncIterator[tuple[str, Pool]]:
    """A fresh schema named `prefix` plus a random suffix, with `service`'s migrations
    that `migration_wanted` keeps, and a superuser pool on it; dropped on exit."""
    schema = f"{prefix}_{uuid.uuid4().hex[:10]}"
    pool = await create_pool(admin_database_url, schema, max_size=max_size)
    async with pool.acquire() as connection:
        await connection.execute(f'CREATE SCHEMA "{schema}"')
        for name, sql in migrations_for(service):
            if migration_wanted(name):
                await connection.execute(sql)
    try:
        yield schema, pool
    finally:
        async with pool.acquire() as connection:
            await connection.execute(f'DROP SCHEMA "{schema}" CASCADE')
        await pool.close()
