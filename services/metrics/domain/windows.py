"""Tumbling windows on event time, in the Jalali calendar and Iran's clock.

Every figure is counted in windows that analysts name the way they report them: a day
is `1403-01-01`, a week `1403-W05` (weeks start on Saturday and are cut at the year's
edges, so a week never spans two years), a quarter `1403-Q1` (three Jalali months), an
hour `1403-01-01T08`, a minute `1403-01-01T08:30`, and everything ever `all`. Window
bounds are computed in the Asia/Tehran time zone, so a day starts at local midnight.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo

import jdatetime

from shared.events.metrics import Granularity

TEHRAN = ZoneInfo("Asia/Tehran")
ALL_TIME_LABEL = "all"


@dataclass(frozen=True, order=True)
class Window:
    """One window: its granularity, its Jalali label, and its bounds in UTC (None: all time)."""

    granularity: Granularity
    label: str
    start: datetime | None
    end: datetime | None


ALL_TIME = Window("all_time", ALL_TIME_LABEL, None, None)


def _local(moment: datetime) -> jdatetime.datetime:
    if moment.tzinfo is None:
        raise ValueError("window_of needs an aware datetime")
    local = moment.astimezone(TEHRAN)
    return jdatetime.datetime.fromgregorian(datetime=local.replace(tzinfo=None))


def _utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Jalali local wall-clock time as an aware UTC datetime."""
    gregorian = jdatetime.datetime(year, month, day, hour, minute).togregorian()
    moment: datetime = gregorian.replace(tzinfo=TEHRAN).astimezone(UTC)
    return moment


def _year_start(year: int) -> jdatetime.date:
    return jdatetime.date(year, 1, 1)


def _week_number(day: jdatetime.date) -> int:
    # Week 1 holds 1 Farvardin; weekday() is 0 on Saturday.
    first = _year_start(day.year)
    number: int = (day.yday() - 1 + first.weekday()) // 7 + 1
    return number


def _week_bounds(year: int, week: int) -> tuple[jdatetime.date, jdatetime.date]:
    first = _year_start(year)
    start = first + jdatetime.timedelta(days=(week - 1) * 7 - first.weekday())
    end = start + jdatetime.timedelta(days=7)
    next_year = _year_start(year + 1)
    return max(start, first), min(end, next_year)


def _date_utc(day: jdatetime.date) -> datetime:
    return _utc(day.year, day.month, day.day)


def window_of(granularity: Granularity, moment: datetime) -> Window:
    """The window of this granularity that holds `moment` (an aware datetime)."""
    if granularity == "all_time":
        return ALL_TIME
    if moment.tzinfo is None:
        raise ValueError("window_of needs an aware datetime")
    # Every window is a whole number of minutes, so the minute decides it; calendar
    # conversions are slow enough to matter at the worker's rates, hence the cache.
    minute = moment.astimezone(UTC).replace(second=0, microsecond=0)
    return _window_of_minute(granularity, minute)


@lru_cache(maxsize=65_536)
def _window_of_minute(granularity: Granularity, moment: datetime) -> Window:
    local = _local(moment)
    y, m, d = local.year, local.month, local.day
    if granularity == "minute":
        start = _utc(y, m, d, local.hour, local.minute)
        label = f"{y:04d}-{m:02d}-{d:02d}T{local.hour:02d}:{local.minute:02d}"
        return Window(granularity, label, start, start + timedelta(minutes=1))
    if granularity == "hour":
        start = _utc(y, m, d, local.hour)
        label = f"{y:04d}-{m:02d}-{d:02d}T{local.hour:02d}"
        return Window(granularity, label, start, start + timedelta(hours=1))
    if granularity == "day":
        day = jdatetime.date(y, m, d)
        return Window(
            granularity,
            f"{y:04d}-{m:02d}-{d:02d}",
            _date_utc(day),
            _date_utc(day + jdatetime.timedelta(days=1)),
        )
    if granularity == "week":
        week = _week_number(jdatetime.date(y, m, d))
        first, after = _week_bounds(y, week)
        return Window(granularity, f"{y:04d}-W{week:02d}", _date_utc(first), _date_utc(after))
    if granularity == "quarter":
        quarter = (m - 1) // 3 + 1
        first_month = (quarter - 1) * 3 + 1
        start = _utc(y, first_month, 1)
        end = _utc(y + 1, 1, 1) if quarter == 4 else _utc(y, first_month + 3, 1)
        return Window(granularity, f"{y:04d}-Q{quarter}", start, end)
    if granularity == "year":
        return Window(granularity, f"{y:04d}", _utc(y, 1, 1), _utc(y + 1, 1, 1))
    raise ValueError(f"unknown granularity {granularity!r}")


_LABEL = re.compile(
    r"^(?P<y>\d{4})(?:-(?:W(?P<w>\d{2})|Q(?P<q>[1-4])|(?P<m>\d{2})-(?P<d>\d{2})"
    r"(?:T(?P<h>\d{2})(?::(?P<mi>\d{2}))?)?))?$"
)


def window_from_label(granularity: Granularity, label: str) -> Window:
    """The window a label names (the inverse of `window_of`); ValueError if malformed."""
    if granularity == "all_time":
        if label != ALL_TIME_LABEL:
            raise ValueError(f"the all-time window is labelled {ALL_TIME_LABEL!r}")
        return ALL_TIME
    match = _LABEL.match(label)
    if match is None:
        raise ValueError(f"malformed window label {label!r}")
    y = int(match["y"])
    if granularity == "week" and match["w"]:
        first, _ = _week_bounds(y, int(match["w"]))
        moment = _date_utc(first)
    elif granularity == "quarter" and match["q"]:
        moment = _utc(y, (int(match["q"]) - 1) * 3 + 1, 1)
    elif granularity == "year" and match["m"] is None and match["w"] is None:
        moment = _utc(y, 1, 1)
    elif granularity in ("day", "hour", "minute") and match["m"]:
        hour = int(match["h"] or 0)
        minute = int(match["mi"] or 0)
        moment = _utc(y, int(match["m"]), int(match["d"]), hour, minute)
    else:
        raise ValueError(f"label {label!r} is not a {granularity} window")
    window = window_of(granularity, moment)
    if window.label != label:
        raise ValueError(f"label {label!r} is not a {granularity} window")
    return window


def windows_of(granularities: tuple[Granularity, ...], moment: datetime) -> list[Window]:
    """The windows of each granularity that hold `moment`."""
    return [window_of(granularity, moment) for granularity in granularities]


def jalali_date_text(moment: datetime) -> str:
    """A moment as a Jalali date and time in Tehran, e.g. `1403-01-01 12:00`."""
    local = _local(moment)
    return f"{local.year:04d}-{local.month:02d}-{local.day:02d} {local.hour:02d}:{local.minute:02d}"
