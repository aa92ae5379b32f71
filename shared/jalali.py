"""Dates and times as Iranian users read them: the Jalali calendar, Tehran's clock.

Every service that shows a moment to people shows it the same way: converted to Tehran
local time (zoneinfo, so past offsets stay right), then to the Jalali calendar. The
calendar arithmetic is jdatetime's, done once per day rather than once per call: these
strings go into hot responses (a code request's expiry) and the conversion is the slow
part.
"""

from __future__ import annotations

from datetime import date, datetime
from functools import lru_cache
from zoneinfo import ZoneInfo

import jdatetime

TEHRAN = ZoneInfo("Asia/Tehran")


@lru_cache(maxsize=4096)
def jalali_date(day: date) -> str:
    """`day` in the Jalali calendar, as "YYYY/MM/DD"."""
    return str(jdatetime.date.fromgregorian(date=day).strftime("%Y/%m/%d"))


def jalali_moment(moment: datetime, *, seconds: bool = True) -> str:
    """An aware moment on Tehran's clock in the Jalali calendar: "YYYY/MM/DD HH:MM[:SS]"."""
    local = moment.astimezone(TEHRAN)
    clock = f"{local:%H:%M:%S}" if seconds else f"{local:%H:%M}"
    return f"{jalali_date(local.date())} {clock}"
