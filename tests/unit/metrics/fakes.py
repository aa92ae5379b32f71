"""In-memory stand-ins: the worker's counters, and the service's units of work."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime

from services.metrics.domain.figures import Cell
from services.metrics.domain.programme_register import CurrentFigure, Kept
from services.metrics.domain.queries import FigureQuery
from services.metrics.domain.values import MetricValue
from shared.events.metrics import TargetProgressUpdated
from shared.events.programme import (
    IndicatorRecorded,
    ObservationRecorded,
    ProvincialReportRecorded,
    Scope,
    TargetRecorded,
)
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


class FakeProgrammeWork(FakeOutbox):
    """The programme register in memory: every revision of every entry, by key, in order;
    and the projection of targets' progress. Locks are no-ops (one task at a time)."""

    def __init__(self, now: datetime = datetime(2026, 11, 29, 12, tzinfo=UTC)) -> None:
        super().__init__()
        self.now = now
        self.indicator_revisions: dict[str, list[IndicatorRecorded]] = {}
        self.target_revisions: dict[str, list[Kept[TargetRecorded]]] = {}
        self.observation_revisions: dict[str, list[ObservationRecorded]] = {}
        self.kept_progress: dict[str, tuple[TargetProgressUpdated, datetime]] = {}
        # (province, week) → every revision, with the week's start and when submitted.
        self.report_revisions: dict[
            tuple[str, str], list[tuple[Kept[ProvincialReportRecorded], datetime]]
        ] = {}

    async def indicator(self, code: str, *, for_update: bool = False) -> IndicatorRecorded | None:
        revisions = self.indicator_revisions.get(code)
        return revisions[-1] if revisions else None

    async def indicators(self) -> list[IndicatorRecorded]:
        return [self.indicator_revisions[code][-1] for code in sorted(self.indicator_revisions)]

    async def count_indicators(self) -> int:
        return len(self.indicator_revisions)

    async def write_indicator(self, record: IndicatorRecorded) -> None:
        revisions = self.indicator_revisions.setdefault(record.code, [])
        assert record.revision == len(revisions) + 1, "revisions follow one another"
        revisions.append(record)

    async def target(self, target_id: str, *, for_update: bool = False) -> TargetRecorded | None:
        revisions = self.target_revisions.get(target_id)
        return revisions[-1].record if revisions else None

    async def targets(self) -> list[TargetRecorded]:
        return [self.target_revisions[t][-1].record for t in sorted(self.target_revisions)]

    async def target_history(self, target_id: str) -> list[Kept[TargetRecorded]]:
        return list(self.target_revisions.get(target_id, []))

    async def write_target(self, record: TargetRecorded) -> None:
        revisions = self.target_revisions.setdefault(record.target_id, [])
        assert record.revision == len(revisions) + 1, "revisions follow one another"
        revisions.append(Kept(record, self.now))

    async def observation(
        self, key: str, *, for_update: bool = False
    ) -> ObservationRecorded | None:
        revisions = self.observation_revisions.get(key)
        return revisions[-1] if revisions else None

    async def observations(
        self, indicator: str | None, scope: Scope | None, scope_code: str | None
    ) -> list[CurrentFigure]:
        figures = [
            CurrentFigure(revisions[-1], len(revisions))
            for revisions in self.observation_revisions.values()
            if indicator in (None, revisions[-1].indicator)
            and scope in (None, revisions[-1].scope)
            and scope_code in (None, revisions[-1].scope_code)
        ]
        return sorted(
            figures,
            key=lambda f: (
                f.observation.indicator,
                f.observation.scope,
                f.observation.scope_code or "",
                f.observation.observed_on,
            ),
        )

    async def write_observation(self, record: ObservationRecorded) -> None:
        revisions = self.observation_revisions.setdefault(record.record_key(), [])
        assert record.revision == len(revisions) + 1, "revisions follow one another"
        revisions.append(record)

    async def keep_progress(self, progress: TargetProgressUpdated, occurred_at: datetime) -> None:
        known = self.kept_progress.get(progress.target_id)
        if known is None or known[1] <= occurred_at:
            self.kept_progress[progress.target_id] = (progress, occurred_at)

    async def progress(self) -> list[tuple[TargetProgressUpdated, datetime]]:
        return [self.kept_progress[t] for t in sorted(self.kept_progress)]

    async def progress_of(self, target_id: str) -> tuple[TargetProgressUpdated, datetime] | None:
        return self.kept_progress.get(target_id)

    async def report(
        self, province: str, week: str, *, for_update: bool = False
    ) -> Kept[ProvincialReportRecorded] | None:
        revisions = self.report_revisions.get((province, week))
        return revisions[-1][0] if revisions else None

    def _current_reports(self) -> list[tuple[Kept[ProvincialReportRecorded], datetime]]:
        return [revisions[-1] for revisions in self.report_revisions.values()]

    async def earlier_figures(self, province: str, before: datetime) -> dict[str, float]:
        earlier: dict[str, float] = {}
        reports = sorted(
            (start, kept.record)
            for kept, start in self._current_reports()
            if kept.record.province == province and start < before
        )
        for _, record in reports:  # oldest first: later weeks overwrite
            earlier.update(record.figures)
            earlier.update({f"projects.{code}": v for code, v in record.projects.items()})
        return earlier

    async def write_report(
        self,
        record: ProvincialReportRecorded,
        week_start: datetime,
        week_end: datetime,
        submitted_at: datetime,
    ) -> None:
        revisions = self.report_revisions.setdefault((record.province, record.week), [])
        assert record.revision == len(revisions) + 1, "revisions follow one another"
        revisions.append((Kept(record, submitted_at), week_start))

    async def reports_of_week(self, week: str) -> list[Kept[ProvincialReportRecorded]]:
        return sorted(
            (kept for kept, _ in self._current_reports() if kept.record.week == week),
            key=lambda kept: kept.record.province,
        )

    async def previous_reports(self, before: datetime) -> list[Kept[ProvincialReportRecorded]]:
        latest: dict[str, tuple[datetime, Kept[ProvincialReportRecorded]]] = {}
        for kept, start in self._current_reports():
            known = latest.get(kept.record.province)
            if start < before and (known is None or known[0] < start):
                latest[kept.record.province] = (start, kept)
        return [latest[province][1] for province in sorted(latest)]

    async def reports_of_province(self, province: str) -> list[Kept[ProvincialReportRecorded]]:
        chosen = [
            (start, kept)
            for revisions in self.report_revisions.values()
            for kept, start in revisions
            if kept.record.province == province
        ]
        chosen.sort(key=lambda pair: (pair[0], pair[1].record.revision))
        return [kept for _, kept in chosen]
