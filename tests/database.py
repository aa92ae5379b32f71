"""One statement or query on a database, on a connection of its own, for tests that look
at a platform's database from outside."""

from __future__ import annotations

import asyncpg


async def fetch_rows(database_url: str, query: str, *arguments: object) -> list[asyncpg.Record]:
    connection = await asyncpg.connect(database_url)
    try:
        found: list[asyncpg.Record] = await connection.fetch(query, *arguments)
        return found
    finally:
        await connection.close()


async def execute_on(database_url: str, *statements: str) -> None:
    """Each statement in turn (outside any transaction: `CREATE DATABASE` may be one)."""
    connection = await asyncpg.connect(database_url)
    try:
        for statement in statements:
            await connection.execute(statement)
    finally:
        await connection.close()
