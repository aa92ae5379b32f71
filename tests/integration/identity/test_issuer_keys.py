"""The issuer's private keys are sealed in identity's table; keys stored in the clear by
older releases still load, and are sealed when the service starts."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import asyncpg
import pytest
from fastapi import FastAPI

from services.identity import storage
from services.identity.domain.tokens import new_signing_key
from services.identity.settings import IdentitySettings
from shared.db import Pool
from shared.sealing import Sealer, is_sealed
from tests.integration.identity.conftest import eventually
from tests.schemas import migrated_schema

pytestmark = pytest.mark.integration


async def test_issuer_keys_hold_no_private_key_in_clear(
    app: FastAPI, settings: IdentitySettings
) -> None:
    connection = await asyncpg.connect(settings.database_url)
    try:

        async def rows() -> list[asyncpg.Record]:
            found: list[asyncpg.Record] = await connection.fetch(
                "SELECT kid, private_jwk::text AS raw FROM identity.issuer_keys"
            )
            return found

        found = await eventually(rows)
    finally:
        await connection.close()
    assert found, "identity made no issuer key"
    sealer = Sealer(settings.data_key_bytes)
    for row in found:
        stored = json.loads(row["raw"])
        assert is_sealed(stored)
        assert '"d"' not in row["raw"]
        private = sealer.open(stored, binding=f"identity.issuer_keys:{row['kid']}")
        assert private["d"] not in row["raw"]


@pytest.fixture
async def identity_tables(admin_database_url: str) -> AsyncIterator[Pool]:
    """Identity's tables in a schema of their own, so a planted key never signs anything."""
    async with migrated_schema(admin_database_url, "keys", "identity") as (_, pool):
        yield pool


async def test_a_key_stored_in_clear_by_an_older_release_loads_and_is_sealed(
    identity_tables: Pool, settings: IdentitySettings
) -> None:
    sealer = Sealer(settings.data_key_bytes)
    old = new_signing_key(datetime.now(UTC), datetime.now(UTC))
    await identity_tables.execute(
        "INSERT INTO issuer_keys (kid, private_jwk, public_jwk, not_before)"
        " VALUES ($1, $2, $3, $4)",
        old.kid,
        old.private_jwk,
        old.public_jwk,
        old.not_before,
    )
    async with identity_tables.acquire() as connection:
        assert [k.private_jwk for k in await storage.issuer_keys(connection, sealer)] == [
            old.private_jwk
        ]
        async with connection.transaction():
            assert await storage.seal_plain_issuer_keys(connection, sealer) == 1
        assert await storage.seal_plain_issuer_keys(connection, sealer) == 0
        raw = await connection.fetchval("SELECT private_jwk::text FROM issuer_keys")
        assert old.private_jwk["d"] not in raw
        assert [k.private_jwk for k in await storage.issuer_keys(connection, sealer)] == [
            old.private_jwk
        ]
