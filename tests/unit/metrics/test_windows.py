"""Windows are Jalali, in Tehran's time, tumbling, and their labels round-trip."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.metrics.domain.windows import window_from_label, window_of
from shared.events.metrics import Granularity

NOWRUZ_1403 = datetime(2024, 3, 20, 8, 30, tzinfo=UTC)  # 12:00 in Tehran, 1 Farvardin 1403


def test_a_day_is_labelled_by_the_jalali_calendar_and_starts_at_tehran_midnight() -> None:
    day = window_of("day", NOWRUZ_1403)
    assert day.label == "1403-01-01"
    assert day.start == datetime(2024, 3, 19, 20, 30, tzinfo=UTC)
    assert day.end == datetime(2024, 3, 20, 20, 30, tzinfo=UTC)


def test_just_before_tehran_midnight_is_still_the_previous_jalali_day() -> None:
    assert window_of("day", datetime(2024, 3, 19, 20, 29, tzinfo=UTC)).label == "1402-12-29"


def test_quarters_follow_the_jalali_year() -> None:
    assert window_of("quarter", NOWRUZ_1403).label == "1403-Q1"
    assert window_of("quarter", datetime(2024, 9, 23, 12, tzinfo=UTC)).label == "1403-Q3"


def test_weeks_start_on_saturday_and_are_cut_at_the_new_year() -> None:
    # 1 Farvardin 1403 is a Wednesday: week 1 runs Wednesday to Friday.
    first = window_of("week", NOWRUZ_1403)
    assert first.label == "1403-W01"
    assert first.start == datetime(2024, 3, 19, 20, 30, tzinfo=UTC)
    assert first.end == datetime(2024, 3, 22, 20, 30, tzinfo=UTC)
    saturday = window_of("week", datetime(2024, 3, 23, 8, tzinfo=UTC))
    assert saturday.label == "1403-W02"
    assert saturday.end is not None
    assert saturday.start is not None
    assert saturday.end - saturday.start == timedelta(days=7)


def test_minutes_and_hours_carry_tehran_local_time() -> None:
    assert window_of("hour", NOWRUZ_1403).label == "1403-01-01T12"
    assert window_of("minute", NOWRUZ_1403).label == "1403-01-01T12:00"


def test_all_time_has_no_bounds() -> None:
    everything = window_of("all_time", NOWRUZ_1403)
    assert (everything.label, everything.start, everything.end) == ("all", None, None)


def test_a_malformed_label_is_refused() -> None:
    with pytest.raises(ValueError, match="label"):
        window_from_label("day", "1403-W01")


@given(
    moment=st.datetimes(
        min_value=datetime(1990, 1, 1), max_value=datetime(2060, 1, 1), timezones=st.just(UTC)
    ),
    granularity=st.sampled_from(["minute", "hour", "day", "week", "quarter", "year"]),
)
def test_every_moment_falls_in_exactly_its_window_and_the_label_names_it(
    moment: datetime, granularity: Granularity
) -> None:
    window = window_of(granularity, moment)
    assert window.start is not None
    assert window.end is not None
    assert window.start <= moment < window.end
    assert window_from_label(granularity, window.label) == window
