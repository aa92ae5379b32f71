"""The metrics service's use cases, on an in-memory unit of work."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.metrics import use_cases
from services.metrics.domain.queries import FigureQuery, parse_dimensions, parse_granularity
from services.metrics.domain.reference import load_reference
from services.metrics.domain.values import MetricValue
from shared.errors import Malformed
from tests.unit.metrics.fakes import FakeMetricsWork

NOW = datetime(2026, 11, 29, 12, tzinfo=UTC)
TOPIC = "metrics.exchange"


def figure(
    value: float,
    *,
    metric: str = "exchange.transactions",
    granularity: str = "day",
    day: int = 0,
    dimensions: dict[str, str] | None = None,
    published: datetime = NOW,
) -> MetricValue:
    start = None if granularity == "all_time" else NOW + timedelta(days=day)
    dims = dimensions or {}
    return MetricValue(
        key=f"{metric}|{granularity}|{start}|{sorted(dims.items())}",
        metric=metric,
        dimensions=dims,
        granularity=granularity,
        window_start=start,
        window_end=None if start is None else start + timedelta(days=1),
        window_label="all time" if start is None else f"day {day}",
        value=value,
        unit="count",
        published_at=published,
    )


async def test_a_later_publication_of_a_figure_replaces_the_earlier_one() -> None:
    work = FakeMetricsWork()
    await use_cases.project_figure(work, TOPIC, figure(5, published=NOW))
    await use_cases.project_figure(work, TOPIC, figure(7, published=NOW + timedelta(seconds=1)))
    (kept,) = await use_cases.current_figures(work, FigureQuery())
    assert kept.value == 7


async def test_an_older_publication_arriving_late_never_replaces_a_newer_figure() -> None:
    work = FakeMetricsWork()
    await use_cases.project_figure(work, TOPIC, figure(7, published=NOW))
    await use_cases.project_figure(work, TOPIC, figure(5, published=NOW - timedelta(seconds=1)))
    (kept,) = await use_cases.current_figures(work, FigureQuery())
    assert kept.value == 7
    assert await use_cases.last_change(work) == NOW


async def test_a_series_is_the_last_windows_oldest_first() -> None:
    work = FakeMetricsWork()
    for day in range(5):
        await use_cases.project_figure(work, TOPIC, figure(day * 10, day=day))
    points = await use_cases.figure_series(work, "exchange.transactions", "day", {}, 3)
    assert [p.value for p in points] == [20, 30, 40]


async def test_the_dashboard_shows_the_headline_total_and_each_provinces_row() -> None:
    work = FakeMetricsWork()
    await use_cases.project_figure(work, TOPIC, figure(1234, granularity="all_time"))
    await use_cases.project_figure(
        work,
        "metrics.identity",
        figure(
            99,
            metric="identity.people_authenticated",
            granularity="all_time",
            dimensions={"province": "IR-23"},
        ),
    )
    data = await use_cases.dashboard(work, load_reference(), NOW)
    headline = {item["id"]: item["value"] for item in data["headline"]}
    assert headline["transactions"] == 1234
    tehran = next(row for row in data["provinces"] if row["code"] == "IR-23")
    assert tehran["people"] == 99


def test_a_reader_naming_an_unknown_granularity_is_told_so() -> None:
    with pytest.raises(Malformed) as refused:
        parse_granularity("fortnight")
    assert refused.value.code == "unknown_granularity"
    assert parse_granularity("quarter") == "quarter"


def test_dimensions_are_name_value_pairs_and_empty_means_totals() -> None:
    assert parse_dimensions("province=IR-15,channel=online") == {
        "province": "IR-15",
        "channel": "online",
    }
    assert parse_dimensions("") == {}
    with pytest.raises(Malformed) as refused:
        parse_dimensions("province")
    assert refused.value.code == "invalid_dimensions"
