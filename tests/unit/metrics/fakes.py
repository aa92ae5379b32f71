"""In-memory stand-ins: the worker's counters, and the service's unit of work."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

from services.metrics.domain.figures import Cell
from services.metrics.domain.queries import FigureQuery
from services.metrics.domain.values import MetricValue
from tests.unit.fake_outbox import FakeOutbox


class FakeCounts:
    def __init__(self) -> None:
        self.counts: Counter[Cell] = Counter()

    def add_all(self, cells: Iterable[Cell]) -> set[Cell]:
        changed = set()
        for cell in cells:
            self.counts[cell] += 1
            changed.add(cell)
        return changed

    def value(self, cell: Cell) -> float:
        return float(self.counts[cell])

    def cells(self, metric: str) -> Iterable[Cell]:
        return [cell for cell in self.counts if cell.metric == metric]


class FakeMetricsWork(FakeOutbox):
    """The metrics service's unit of work in memory: the projection as a dict by key."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, MetricValue] = {}
        self.topics: dict[str, str] = {}
        self.changed_at: datetime | None = None

    async def keep_latest(self, topic: str, value: MetricValue) -> None:
        known = self.values.get(value.key)
        if known is None or known.published_at <= value.published_at:
            self.values[value.key] = value
            self.topics[value.key] = topic
            self.changed_at = value.published_at

    async def current(self, query: FigureQuery) -> list[MetricValue]:
        chosen = [
            value
            for value in self.values.values()
            if query.metric in (None, value.metric)
            and (query.prefix is None or value.metric.startswith(query.prefix))
            and query.granularity in (None, value.granularity)
            and query.window_label in (None, value.window_label)
            and (query.dimensions is None or value.dimensions == query.dimensions)
        ]
        chosen.sort(key=lambda v: (v.metric, v.key))
        chosen.sort(key=lambda v: v.window_start or datetime.max.replace(tzinfo=UTC), reverse=True)
        return chosen[: query.limit]

    async def series(
        self, metric: str, granularity: str, dimensions: dict[str, str], limit: int
    ) -> list[MetricValue]:
        windows = [
            value
            for value in self.values.values()
            if (value.metric, value.granularity, value.dimensions)
            == (metric, granularity, dimensions)
            and value.window_start is not None
        ]
        windows.sort(key=lambda v: v.window_start or datetime.min)
        return windows[-limit:]

    async def by_one_dimension(self, metrics: list[str]) -> list[MetricValue]:
        return [
            value
            for value in self.values.values()
            if value.metric in metrics
            and value.granularity == "all_time"
            and len(value.dimensions) == 1
        ]

    async def latest_totals(self, metrics: list[str]) -> list[MetricValue]:
        return [
            value
            for value in self.values.values()
            if value.metric in metrics and value.dimensions == {}
        ]

    async def last_change(self) -> datetime | None:
        return self.changed_at
