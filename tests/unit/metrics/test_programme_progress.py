"""Where a target stands: progress, trend, projection and the documented status rule."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from services.metrics.domain.programme import (
    LIVE_HISTORY_DAYS,
    LiveFigure,
    Point,
    least_squares,
    live_points,
    remember,
    status_of,
    target_progress,
)
from services.metrics.domain.windows import window_of
from shared.events.programme import IndicatorRecorded, TargetRecorded
from shared.jalali import parse_jalali_day

INDICATOR = IndicatorRecorded(
    code="smart_services_share",
    name_fa="سهم خدمات هوشمند",
    name_en="Share of services that are smart",
    definition_fa="درصد خدمات هوشمند",
    definition_en="Smart services, in percent",
    unit="percent",
    direction="increase",
    source="live",
    live_metric="adoption.smart_share",
    live_window="all_time",
    live_scale=100,
    revision=1,
    changed_by="test",
)


def _target(baseline: float = 10, target: float = 30, **changes: object) -> TargetRecorded:
    fields: dict[str, object] = {
        "target_id": "plan7.smart-services-1403",
        "indicator": "smart_services_share",
        "scope": "national",
        "baseline_value": baseline,
        "baseline_date": "1403-01-01",
        "target_value": target,
        "deadline": "1403-12-30",
        "basis_fa": "برنامه هفتم",
        "basis_en": "7th plan",
        "citation": "A2",
        "active": True,
        "revision": 1,
        "changed_by": "test",
    }
    fields.update(changes)
    return TargetRecorded.model_validate(fields)


def _day(text: str) -> date:
    return parse_jalali_day(text)


def test_least_squares_recovers_a_straight_line() -> None:
    points = [Point(date(2024, 1, 1 + i), 5.0 + 2.0 * i) for i in range(5)]
    line = least_squares(points)
    assert line is not None
    assert line.slope == pytest.approx(2.0)
    assert line.at(date(2024, 1, 11)) == pytest.approx(25.0)


def test_one_day_of_figures_gives_no_trend() -> None:
    assert least_squares([Point(date(2024, 1, 1), 1.0), Point(date(2024, 1, 1), 2.0)]) is None


def test_a_target_without_figures_has_no_data() -> None:
    progress = target_progress(_target(), INDICATOR, [], _day("1403-06-01"))
    assert progress.status == "no_data"
    assert progress.current_value is None
    assert progress.progress is None
    assert [p.day for p in progress.series] == ["1403-01-01"]


def test_a_steady_climb_that_reaches_the_target_by_the_deadline_is_on_track() -> None:
    # Ten points a quarter from 10 on 1403-01-01 reaches 30 before the year is out.
    figures = [Point(_day("1403-04-01"), 20.0), Point(_day("1403-07-01"), 29.0)]
    progress = target_progress(_target(), INDICATOR, figures, _day("1403-07-01"))
    assert progress.current_value == 29.0
    assert progress.current_as_of == "1403-07-01"
    assert progress.progress == pytest.approx(0.95)
    assert progress.projected_value is not None
    assert progress.projected_value > 30
    assert progress.status == "on_track"


def test_a_projection_short_by_less_than_a_tenth_of_the_way_is_at_risk() -> None:
    # 10 → 28.5 projected at the deadline: 92.5% of the way.
    slope_per_day = 18.5 / (_day("1403-12-30") - _day("1403-01-01")).days
    figures = [
        Point(day, 10 + slope_per_day * (day - _day("1403-01-01")).days)
        for day in (_day("1403-03-01"), _day("1403-06-01"))
    ]
    progress = target_progress(_target(), INDICATOR, figures, _day("1403-06-01"))
    assert progress.projected_value == pytest.approx(28.5)
    assert progress.status == "at_risk"


def test_a_flat_series_is_behind() -> None:
    figures = [Point(_day("1403-03-01"), 11.0), Point(_day("1403-06-01"), 11.0)]
    assert target_progress(_target(), INDICATOR, figures, _day("1403-06-01")).status == "behind"


def test_reaching_the_target_is_achieved_even_after_the_deadline() -> None:
    figures = [Point(_day("1403-10-01"), 31.0)]
    progress = target_progress(_target(), INDICATOR, figures, _day("1404-02-01"))
    assert progress.status == "achieved"


def test_a_deadline_passed_short_of_the_target_is_missed() -> None:
    figures = [Point(_day("1403-10-01"), 25.0)]
    progress = target_progress(_target(), INDICATOR, figures, _day("1404-02-01"))
    assert progress.status == "missed"
    assert progress.expected_progress == 1.0


def test_an_indicator_wanted_lower_progresses_as_it_falls() -> None:
    # In-person visits: 100% of the baseline down to 88%.
    target = _target(baseline=100, target=88)
    figures = [Point(_day("1403-06-01"), 94.0)]
    progress = target_progress(target, INDICATOR, figures, _day("1403-06-01"))
    assert progress.progress == pytest.approx(0.5)


def test_figures_before_the_baseline_or_after_today_are_left_out() -> None:
    figures = [
        Point(_day("1402-06-01"), 3.0),
        Point(_day("1403-03-01"), 15.0),
        Point(_day("1403-09-01"), 40.0),
    ]
    progress = target_progress(_target(), INDICATOR, figures, _day("1403-06-01"))
    assert [p.day for p in progress.series] == ["1403-01-01", "1403-03-01"]
    assert progress.current_value == 15.0


@pytest.mark.parametrize(
    ("progress", "expected", "projected", "passed", "status"),
    [
        (None, 0.5, None, False, "no_data"),
        (1.0, 0.5, None, False, "achieved"),
        (0.5, 1.0, None, True, "missed"),
        (0.5, 0.5, 1.2, False, "on_track"),
        (0.5, 0.5, 0.9, False, "at_risk"),
        (0.5, 0.5, 0.89, False, "behind"),
        (0.5, 0.5, None, False, "on_track"),
        (0.41, 0.5, None, False, "at_risk"),
        (0.39, 0.5, None, False, "behind"),
    ],
)
def test_the_status_rule(
    progress: float | None, expected: float, projected: float | None, passed: bool, status: str
) -> None:
    assert status_of(progress, expected, projected, deadline_passed=passed) == status


def _live(granularity: str, value: float, **fields: object) -> LiveFigure:
    base: dict[str, object] = {
        "metric": "adoption.smart_share",
        "dimensions": {},
        "granularity": granularity,
        "start": None,
        "end": None,
        "value": value,
        "history": {},
    }
    base.update(fields)
    return LiveFigure(**base)  # type: ignore[arg-type]


def test_an_all_time_figure_gives_a_point_for_each_day_it_was_seen_scaled() -> None:
    figure = _live("all_time", 0.25, history={_day("1403-02-01"): 0.15, _day("1403-03-01"): 0.25})
    points = live_points(_target(), INDICATOR, [figure], datetime(2024, 6, 1, tzinfo=UTC))
    assert points == [Point(_day("1403-02-01"), 15.0), Point(_day("1403-03-01"), 25.0)]


def test_a_live_figure_of_another_scope_or_metric_is_not_read() -> None:
    others = [
        _live("all_time", 0.5, dimensions={"agency": "tax"}, history={_day("1403-02-01"): 0.5}),
        _live("all_time", 0.5, metric="adoption.electronic_share", history={_day("1403-02-01"): 1}),
        _live("year", 0.5, history={_day("1403-02-01"): 0.5}),
    ]
    assert live_points(_target(), INDICATOR, others, datetime(2024, 6, 1, tzinfo=UTC)) == []


def test_an_agency_target_reads_the_agency_dimension() -> None:
    figure = _live("all_time", 0.5, dimensions={"agency": "tax"}, history={_day("1403-02-01"): 0.5})
    target = _target(scope="agency", scope_code="tax")
    points = live_points(target, INDICATOR, [figure], datetime(2024, 6, 1, tzinfo=UTC))
    assert points == [Point(_day("1403-02-01"), 50.0)]


def test_the_running_year_is_annualised_and_a_finished_year_counts_whole() -> None:
    per_year = INDICATOR.model_copy(update={"live_window": "year", "live_scale": 1.0})
    year_1402 = window_of("year", datetime(2023, 6, 1, tzinfo=UTC))
    year_1403 = window_of("year", datetime(2024, 6, 1, tzinfo=UTC))
    assert year_1403.start is not None
    assert year_1403.end is not None
    halfway = year_1403.start + (year_1403.end - year_1403.start) / 2
    figures = [
        _live("year", 1000.0, start=year_1402.start, end=year_1402.end),
        _live("year", 600.0, start=year_1403.start, end=year_1403.end),
    ]
    points = live_points(_target(), per_year, figures, halfway)
    assert points[0] == Point(_day("1402-12-29"), 1000.0)
    assert points[1].value == pytest.approx(1200.0)


def test_history_keeps_the_latest_days_only() -> None:
    history: dict[date, float] = {}
    for offset in range(LIVE_HISTORY_DAYS + 5):
        history = remember(history, date(2024, 1, 1) + timedelta(days=offset), float(offset))
    assert len(history) == LIVE_HISTORY_DAYS
    assert min(history) == date(2024, 1, 6)
