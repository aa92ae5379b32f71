"""Wires the metrics service together: settings, HTTP routes, event handlers, and in
development the programme's reference register."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

from fastapi import FastAPI

from services.metrics import programme_reference, weekly_reports
from services.metrics.evaluation_reports import keep_reports_current
from services.metrics.handlers import HANDLERS
from services.metrics.http import router
from services.metrics.settings import MetricsSettings
from services.metrics.storage import ProgrammeStorage
from shared.logging import get_logger
from shared.runtime import Runtime, create_app, serve
from shared.unit_of_work import transaction

log = get_logger(__name__)


async def load_reference_if_empty(runtime: Runtime) -> None:
    """In development, an empty programme register gets the reference data, and a province
    of the sample that never reported gets its first weekly report (so a register loaded
    before the sample existed gets it too); then this task idles.

    It stays alive (the runtime reports a background task that ended as a failure).
    """
    async with transaction(runtime.pool, ProgrammeStorage) as work:
        empty = await work.count_indicators() == 0
    if empty:
        loaded = await programme_reference.load(runtime.pool)
        log.info("programme reference register loaded", summary="; ".join(loaded.lines()))
    reported = await programme_reference.load_sample_reports(runtime.pool, datetime.now(UTC))
    if reported:
        log.info("sample weekly reports loaded", provinces=reported)
    await asyncio.Event().wait()


def build(settings: MetricsSettings | None = None) -> FastAPI:
    settings = settings or MetricsSettings()
    background: dict[str, Callable[[Runtime], Coroutine[Any, Any, None]]] = {}
    if settings.environment == "development" and settings.load_reference_when_empty:
        background["programme-reference"] = load_reference_if_empty
    if settings.weekly_reports:
        background["weekly-reports"] = weekly_reports.run
    # Each ended quarter's evaluation report, generated again as its figures change.
    background["evaluation-reports"] = keep_reports_current
    return create_app(
        settings,
        title="Panjereh metrics",
        routers=[router],
        handlers=HANDLERS,
        # The programme register's writes take operators' tokens (`programme:admin`).
        verifies_tokens=True,
        background=background,
    )


def main() -> None:
    settings = MetricsSettings()
    serve(build(settings), settings)
