"""The metrics service's HTTP API: current figures, time series, and the live dashboard.

Everything here reads the service's own projection of the metrics topics; nothing calls
another service. `/api/stream` pushes the dashboard's data (server-sent events) whenever
the projection changes, so the page updates without reloading.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from importlib import resources
from string import Template
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sse_starlette.sse import EventSourceResponse

from services.metrics import messages as _messages  # noqa: F401  (registers the codes)
from services.metrics import use_cases
from services.metrics.domain.queries import FigureQuery, parse_dimensions, parse_granularity
from services.metrics.domain.reference import load_reference
from services.metrics.storage import MetricsStorage
from shared.db import Pool
from shared.http import ProblemError
from shared.runtime import RuntimeDep
from shared.unit_of_work import transaction

router = APIRouter()
reference = load_reference()
STREAM_INTERVAL_SECONDS = 1.0
_STATIC = resources.files("services.metrics") / "static"
_ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}


@router.get("/api/metrics", tags=["figures"], summary="Current figures, filtered")
async def figures(
    runtime: RuntimeDep,
    metric: str | None = None,
    prefix: Annotated[str | None, Query(description="e.g. `exchange.`")] = None,
    granularity: str | None = None,
    window: Annotated[str | None, Query(description="A Jalali window label")] = None,
    dimensions: Annotated[
        str | None, Query(description="`name=value,...`; empty for totals only")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> dict[str, Any]:
    query = FigureQuery.parse(
        metric=metric,
        prefix=prefix,
        granularity=granularity,
        window_label=window,
        dimensions=dimensions,
        limit=limit,
    )
    async with transaction(runtime.pool, MetricsStorage) as work:
        values = await use_cases.current_figures(work, query)
    return {"figures": [v.as_json() for v in values]}


@router.get("/api/metrics/{metric}/series", tags=["figures"], summary="A figure over time")
async def figure_series(
    metric: str,
    runtime: RuntimeDep,
    granularity: str = "day",
    dimensions: str = "",
    limit: Annotated[int, Query(ge=1, le=10_000)] = 30,
) -> dict[str, Any]:
    chosen, named = parse_granularity(granularity), parse_dimensions(dimensions)
    async with transaction(runtime.pool, MetricsStorage) as work:
        values = await use_cases.figure_series(work, metric, chosen, named, limit)
    return {
        "metric": metric,
        "granularity": chosen,
        "dimensions": named,
        "points": [
            {
                "window_label": v.window_label,
                "window_start": v.window_start.isoformat() if v.window_start else None,
                "value": v.value,
                "unit": v.unit,
            }
            for v in values
        ],
    }


async def dashboard_data(pool: Pool) -> dict[str, Any]:
    """Everything the dashboard shows, from the projection."""
    async with transaction(pool, MetricsStorage) as work:
        return await use_cases.dashboard(work, reference, datetime.now(UTC))


async def last_change(pool: Pool) -> datetime | None:
    async with transaction(pool, MetricsStorage) as work:
        return await use_cases.last_change(work)


@router.get("/api/dashboard", tags=["dashboard"], summary="The dashboard's data")
async def dashboard_json(runtime: RuntimeDep) -> dict[str, Any]:
    return await dashboard_data(runtime.pool)


@router.get("/api/stream", tags=["dashboard"], summary="The dashboard's data, live (SSE)")
async def dashboard_stream(request: Request, runtime: RuntimeDep) -> EventSourceResponse:
    async def changes() -> AsyncIterator[dict[str, str]]:
        seen: datetime | None = None
        first = True
        while not await request.is_disconnected():
            changed = await last_change(runtime.pool)
            if first or changed != seen:
                first, seen = False, changed
                data = await dashboard_data(runtime.pool)
                yield {"event": "dashboard", "data": json.dumps(data, ensure_ascii=False)}
            await asyncio.sleep(STREAM_INTERVAL_SECONDS)

    return EventSourceResponse(changes(), ping=15)


@router.get("/", include_in_schema=False)
async def home() -> RedirectResponse:
    return RedirectResponse("/dashboard")


@router.get(
    "/dashboard",
    tags=["dashboard"],
    summary="The live dashboard (HTML)",
    response_class=HTMLResponse,
)
async def dashboard_page(runtime: RuntimeDep, lang: Literal["fa", "en"] = "fa") -> HTMLResponse:
    data = await dashboard_data(runtime.pool)
    # Embedded as JSON in a script element: `<` is escaped so no text can close it.
    initial = json.dumps(data, ensure_ascii=False).replace("<", "\\u003c")
    page = Template((_STATIC / "dashboard.html").read_text("utf-8")).substitute(
        lang=lang,
        dir="rtl" if lang == "fa" else "ltr",
        title="پایش برنامه دولت هوشمند" if lang == "fa" else "Smart government programme",
        initial=initial,
    )
    return HTMLResponse(page)


@router.get("/static/{name}", include_in_schema=False)
async def asset(name: str) -> Response:
    if name not in _ASSETS:
        raise ProblemError(404, "not_found")
    return Response((_STATIC / name).read_bytes(), media_type=_ASSETS[name])
