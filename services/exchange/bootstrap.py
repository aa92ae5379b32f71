"""Wires the exchange service together: settings, HTTP routes, event handlers, the sweeper."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

from fastapi import FastAPI
from starlette.types import Lifespan

from services.exchange import storage
from services.exchange.domain.audit import CheckpointPolicy
from services.exchange.handlers import (
    BATCHES,
    HANDLERS,
    TRANSACTION_TOPICS,
    audit_checkpointer,
    payload_retention,
    read_audit_anchoring,
    run_sweeper,
)
from services.exchange.http import router
from services.exchange.settings import ExchangeSettings
from services.exchange.storage import ExchangeStorage
from services.exchange.use_cases import registers
from shared.db import Pool, create_pool
from shared.runtime import create_app, serve
from shared.sealing import Sealer
from shared.unit_of_work import transaction

__all__ = ["TRANSACTION_TOPICS", "build", "commit_signing_key", "main"]


def build(settings: ExchangeSettings | None = None) -> FastAPI:
    settings = settings or ExchangeSettings()
    storage.seal_signing_keys_with(Sealer(settings.data_key_bytes))
    # Several members of the consumer group take requests and answers, so their waits on
    # the database overlap; how many is a setting.
    batches = {
        name: replace(batch, members=settings.transaction_consumers)
        for name, batch in BATCHES.items()
    }
    app = create_app(
        settings,
        title="Panjereh exchange",
        routers=[router],
        handlers=HANDLERS,
        batches=batches,
        verifies_tokens=True,
        background={
            "timeout-sweeper": run_sweeper,
            "payload-retention": payload_retention(
                timedelta(seconds=settings.payload_retention_seconds)
            ),
            "audit-checkpoints": audit_checkpointer(
                CheckpointPolicy(
                    settings.audit_checkpoint_seconds, settings.audit_checkpoint_records
                )
            ),
        },
        probes={"audit-anchoring": read_audit_anchoring},
    )
    app.router.lifespan_context = _signing_key_first(settings, app.router.lifespan_context)
    return app


async def commit_signing_key(pool: Pool) -> str:
    """Load the exchange's signing key, its first one made if it has none, in a
    transaction of its own; returns its kid."""
    async with transaction(pool, ExchangeStorage) as work:
        return await registers.signing_key(work)


def _signing_key_first(settings: ExchangeSettings, run: Lifespan[Any]) -> Lifespan[Any]:
    """`run`, once the signing key is committed: nothing is signed with a key that a
    failed or killed poll could take back with it (registers.signing_key)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[Any]:
        pool = await create_pool(settings.database_url, settings.database_schema, max_size=1)
        try:
            await commit_signing_key(pool)
        finally:
            await pool.close()
        async with run(app) as state:
            yield state

    return lifespan


def main() -> None:
    settings = ExchangeSettings()
    serve(build(settings), settings)
