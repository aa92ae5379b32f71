"""The figures' use cases: keep each published figure, and answer readers.

Each takes a unit of work (`MetricsWork`): the service's storage, in one transaction.
The figures themselves are computed by the stream worker (`services.metrics.worker`);
this service projects what it publishes and serves it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from services.metrics.domain.dashboard import HEADLINE, SERIES, TABLE_METRICS, build_dashboard
from services.metrics.domain.queries import FigureQuery
from services.metrics.domain.reference import Reference
from services.metrics.domain.values import MetricValue
from shared.events.metrics import Granularity
from shared.unit_of_work import Publisher


class MetricsWork(Publisher, Protocol):
    """The storage the use cases need (`services.metrics.storage.MetricsStorage`)."""

    async def keep_latest(self, topic: str, value: MetricValue) -> None: ...

    async def current(self, query: FigureQuery) -> list[MetricValue]: ...

    async def series(
        self, metric: str, granularity: str, dimensions: dict[str, str], limit: int
    ) -> list[MetricValue]: ...

    async def by_one_dimension(self, metrics: list[str]) -> list[MetricValue]: ...

    async def latest_totals(self, metrics: list[str]) -> list[MetricValue]: ...

    async def last_change(self) -> datetime | None: ...


async def project_figure(work: MetricsWork, topic: str, value: MetricValue) -> None:
    """Keep a figure's latest value; an older publication never replaces a newer one."""
    await work.keep_latest(topic, value)


async def current_figures(work: MetricsWork, query: FigureQuery) -> list[MetricValue]:
    """The figures matching every filter of the query, newest window first."""
    return await work.current(query)


async def figure_series(
    work: MetricsWork,
    metric: str,
    granularity: Granularity,
    dimensions: dict[str, str],
    limit: int,
) -> list[MetricValue]:
    """The last `limit` windows of one figure, oldest first."""
    return await work.series(metric, granularity, dimensions, limit)


async def dashboard(work: MetricsWork, reference: Reference, now: datetime) -> dict[str, Any]:
    """Everything the dashboard shows: headline totals, series and provincial tables."""
    totals = await work.latest_totals(sorted({metric for _, metric, _ in HEADLINE}))
    series = {
        name: await work.series(metric, granularity, {}, count)
        for name, metric, granularity, count in SERIES
    }
    breakdowns = await work.by_one_dimension(TABLE_METRICS)
    return build_dashboard(totals, series, breakdowns, reference, now)


async def last_change(work: MetricsWork) -> datetime | None:
    """When the projection last changed (for live updates)."""
    return await work.last_change()
