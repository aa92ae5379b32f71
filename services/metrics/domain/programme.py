"""Where a target of the programme stands: pure arithmetic over an indicator's series.

A target says: this indicator, for the country, a province or an agency, goes from a
baseline (a value on a Jalali day) to a target value by a Jalali deadline. Its series is
every figure known for it: the baseline, the figures reported for it, and (for a live
indicator) the values the worker computed. From them:

- **current**: the latest figure.
- **progress**: the share of the way from baseline to target covered,
  `(current - baseline) / (target - baseline)`; 1 means reached. It works the same for an
  indicator the programme wants lower (the target is below the baseline).
- **expected progress**: the share a straight path from baseline to target would have
  covered by today (0 before the baseline, 1 at and after the deadline).
- **trend**: the least-squares line through the series (value against day), from two
  distinct days on; **projected** is that line read at the deadline.

The status, in this order:
1. `no_data`: no figure at all.
2. `achieved`: the current value reaches the target (progress ≥ 1).
3. `missed`: the deadline has passed without reaching it.
4. With a trend: `on_track` if the projection reaches the target, `at_risk` if it covers at
   least 90% of the way, else `behind`.
5. Without a trend (a single day of figures): against the straight path: `on_track` if
   progress ≥ expected progress, `at_risk` if it is short by at most 10 points of the way,
   else `behind`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from shared.events.metrics import ProgressPoint, ProgressStatus, TargetProgressUpdated
from shared.events.programme import IndicatorRecorded, ObservationRecorded, TargetRecorded
from shared.jalali import TEHRAN, jalali_day, parse_jalali_day

#: How much of the way short a target may fall and still be "at risk" rather than "behind".
AT_RISK_MARGIN = 0.1
#: The series published with a target's progress keeps its last points (the topic's records
#: stay small; the trend is computed over all of them).
PUBLISHED_POINTS = 120
DAYS_PER_YEAR = 365.2422


@dataclass(frozen=True, order=True)
class Point:
    """An indicator's value on a day."""

    day: date
    value: float


@dataclass(frozen=True)
class Line:
    """A least-squares line: value = intercept + slope × (day − origin), slope per day."""

    origin: date
    intercept: float
    slope: float

    def at(self, day: date) -> float:
        return self.intercept + self.slope * (day - self.origin).days


def series(points: Iterable[Point]) -> list[Point]:
    """One point per day (the last one given for a day wins), in day order."""
    by_day: dict[date, float] = {}
    for point in points:
        by_day[point.day] = point.value
    return [Point(day, value) for day, value in sorted(by_day.items())]


def least_squares(points: list[Point]) -> Line | None:
    """The least-squares line through the points; None with fewer than two distinct days."""
    if len({point.day for point in points}) < 2:
        return None
    origin = points[0].day
    xs = [float((point.day - origin).days) for point in points]
    ys = [point.value for point in points]
    n = len(points)
    mean_x, mean_y = sum(xs) / n, sum(ys) / n
    spread = sum((x - mean_x) ** 2 for x in xs)
    slope = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs, ys, strict=True)) / spread
    return Line(origin, mean_y - slope * mean_x, slope)


def share_of_way(value: float, baseline: float, target: float) -> float:
    """How far `value` is along the way from `baseline` to `target` (1: there)."""
    return (value - baseline) / (target - baseline)


def expected_share(baseline_day: date, deadline: date, today: date) -> float:
    """The share of the way a straight path from baseline to deadline covers by `today`."""
    total = (deadline - baseline_day).days
    elapsed = (today - baseline_day).days
    return min(1.0, max(0.0, elapsed / total))


def status_of(
    progress: float | None,
    expected: float,
    projected_progress: float | None,
    *,
    deadline_passed: bool,
) -> ProgressStatus:
    """The status rule of the module's docstring."""
    if progress is None:
        return "no_data"
    if progress >= 1:
        return "achieved"
    if deadline_passed:
        return "missed"
    if projected_progress is not None:
        if projected_progress >= 1:
            return "on_track"
        return "at_risk" if projected_progress >= 1 - AT_RISK_MARGIN else "behind"
    if progress >= expected:
        return "on_track"
    return "at_risk" if progress >= expected - AT_RISK_MARGIN else "behind"


def observed_points(observations: Iterable[ObservationRecorded]) -> list[Point]:
    """The reported figures as points of a series."""
    return [Point(parse_jalali_day(o.observed_on), o.value) for o in observations]


def target_progress(
    target: TargetRecorded,
    indicator: IndicatorRecorded,
    figures: Iterable[Point],
    today: date,
) -> TargetProgressUpdated:
    """Where `target` stands on `today`, given every known figure of its indicator and scope.

    The baseline is the series' first point unless a figure was given for its day; figures
    dated after `today` are not yet known and are left out.
    """
    baseline_day = parse_jalali_day(target.baseline_date)
    deadline = parse_jalali_day(target.deadline)
    known = series(
        [Point(baseline_day, target.baseline_value)]
        + [p for p in figures if baseline_day < p.day <= today]
    )
    reported = [p for p in known if p.day > baseline_day]
    current = reported[-1] if reported else None
    progress = (
        share_of_way(current.value, target.baseline_value, target.target_value)
        if current is not None
        else None
    )
    line = least_squares(known) if current is not None else None
    projected = line.at(deadline) if line is not None else None
    projected_progress = (
        share_of_way(projected, target.baseline_value, target.target_value)
        if projected is not None
        else None
    )
    expected = expected_share(baseline_day, deadline, today)
    status = status_of(progress, expected, projected_progress, deadline_passed=today > deadline)
    return TargetProgressUpdated(
        target_id=target.target_id,
        indicator=indicator.code,
        indicator_name_fa=indicator.name_fa,
        indicator_name_en=indicator.name_en,
        unit=indicator.unit,
        direction=indicator.direction,
        scope=target.scope,
        scope_code=target.scope_code,
        baseline_value=target.baseline_value,
        baseline_date=target.baseline_date,
        target_value=target.target_value,
        deadline=target.deadline,
        current_value=current.value if current is not None else None,
        current_as_of=jalali_day(current.day) if current is not None else None,
        progress=progress,
        expected_progress=expected,
        trend_per_year=line.slope * DAYS_PER_YEAR if line is not None else None,
        projected_value=projected,
        status=status,
        series=[
            ProgressPoint(day=jalali_day(p.day), value=p.value) for p in known[-PUBLISHED_POINTS:]
        ],
        basis_fa=target.basis_fa,
        basis_en=target.basis_en,
        citation=target.citation,
        evaluated_on=jalali_day(today),
    )


# Live indicators: the figures the worker itself publishes on the metrics topics.

#: How many days of an all-time figure's values the worker keeps as its series.
LIVE_HISTORY_DAYS = 400


@dataclass(frozen=True)
class LiveFigure:
    """A published figure a live indicator may read, with the days it was seen on.

    `history` maps each day (Tehran) an all-time figure was published on to its value
    that day, so the series of a cumulative or state figure survives; windowed figures
    (a year, a day) carry their window instead.
    """

    metric: str
    dimensions: dict[str, str]
    granularity: str
    start: datetime | None
    end: datetime | None
    value: float
    history: dict[date, float]


def scope_dimensions(target: TargetRecorded, indicator: IndicatorRecorded) -> dict[str, str]:
    """The dimensions an indicator's metric is read at for a target's scope."""
    scoped = dict(indicator.live_dimensions)
    if target.scope == "province" and target.scope_code is not None:
        scoped["province"] = target.scope_code
    elif target.scope == "agency" and target.scope_code is not None:
        scoped["agency"] = target.scope_code
    return scoped


def local_day(moment: datetime) -> date:
    """The day `moment` falls on in Tehran."""
    return moment.astimezone(TEHRAN).date()


def live_points(
    target: TargetRecorded,
    indicator: IndicatorRecorded,
    figures: Iterable[LiveFigure],
    now: datetime,
) -> list[Point]:
    """A live indicator's series for a target, from the figures the worker published.

    All-time figures give a point per day seen; day windows a point each; year windows a
    point at the year's last day, and the running year one for today, annualised by the
    share of the year gone so that years compare.
    """
    if indicator.source != "live" or indicator.live_window is None:
        return []
    wanted = scope_dimensions(target, indicator)
    scale = indicator.live_scale
    points: list[Point] = []
    for figure in figures:
        if (
            figure.metric != indicator.live_metric
            or figure.granularity != indicator.live_window
            or figure.dimensions != wanted
        ):
            continue
        if figure.granularity == "all_time":
            points.extend(Point(day, value * scale) for day, value in figure.history.items())
        elif figure.start is not None and figure.end is not None:
            if figure.granularity == "day":
                points.append(Point(local_day(figure.start), figure.value * scale))
            elif figure.end <= now:
                last_day = local_day(figure.end) - timedelta(days=1)
                points.append(Point(last_day, figure.value * scale))
            elif now > figure.start:
                gone = (now - figure.start) / (figure.end - figure.start)
                points.append(Point(local_day(now), figure.value / gone * scale))
    return points


def remember(history: dict[date, float], day: date, value: float) -> dict[date, float]:
    """An all-time figure's history with today's value, its oldest days beyond the cap cut."""
    kept = {**history, day: value}
    for old in sorted(kept)[: max(0, len(kept) - LIVE_HISTORY_DAYS)]:
        del kept[old]
    return kept
