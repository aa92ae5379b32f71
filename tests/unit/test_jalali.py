from datetime import UTC, date, datetime, timedelta, timezone

from shared.jalali import jalali_date, jalali_moment


def test_a_moment_is_shown_on_tehrans_clock_in_the_jalali_calendar() -> None:
    # 20:40 UTC on the last day of the Jalali year is already Nowruz in Tehran.
    assert jalali_moment(datetime(2025, 3, 20, 20, 40, 5, tzinfo=UTC)) == "1404/01/01 00:10:05"


def test_minutes_only_when_seconds_are_not_wanted() -> None:
    moment = datetime(2024, 6, 23, 8, 0, tzinfo=timezone(timedelta(hours=3, minutes=30)))
    assert jalali_moment(moment, seconds=False) == "1403/04/03 08:00"


def test_a_past_summer_moment_keeps_the_daylight_offset_iran_had_then() -> None:
    # Until 2022 Tehran kept +04:30 in summer.
    assert jalali_moment(datetime(2019, 7, 1, 12, 0, tzinfo=UTC)) == "1398/04/10 16:30:00"


def test_a_day_converts_to_its_jalali_date() -> None:
    assert jalali_date(date(1991, 4, 4)) == "1370/01/15"
