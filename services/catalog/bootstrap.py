"""Wires the catalog service together: settings, HTTP routes, event handlers and the
batch consumer of delivery reports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import FastAPI

from services.catalog import reference
from services.catalog.handlers import BATCHES, HANDLERS
from services.catalog.http import router
from services.catalog.settings import CatalogSettings
from services.catalog.storage import CatalogReads
from shared.logging import get_logger
from shared.runtime import Runtime, create_app, serve

log = get_logger(__name__)


async def load_reference_if_empty(runtime: Runtime) -> None:
    """In development, an empty register gets the reference data; then this task idles.

    It stays alive (the runtime reports a background task that ended as a failure).
    """
    async with runtime.pool.acquire() as connection:
        empty = await CatalogReads(connection).count_register() == 0
    if empty:
        loaded = await reference.load(runtime.pool)
        log.info("reference register loaded", summary="; ".join(loaded.lines()))
    await asyncio.Event().wait()


def build(settings: CatalogSettings | None = None) -> FastAPI:
    settings = settings or CatalogSettings()
    background: dict[str, Callable[[Runtime], Coroutine[Any, Any, None]]] = {}
    if settings.environment == "development" and settings.load_reference_when_empty:
        background["reference-data"] = load_reference_if_empty
    return create_app(
        settings,
        title="Panjereh catalog",
        routers=[router],
        handlers=HANDLERS,
        batches=BATCHES,
        verifies_tokens=True,
        background=background,
    )


def main() -> None:
    settings = CatalogSettings()
    serve(build(settings), settings)
