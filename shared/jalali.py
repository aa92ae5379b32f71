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
from typing import Annotated
from zoneinfo import ZoneInfo

import jdatetime
from pydantic import AfterValidator, Field, StringConstraints

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


def parse_jalali_day(text: str) -> date:
    """A Jalali day written "YYYY-MM-DD" (as window labels write it), as a Gregorian date.

    ValueError if it is not a day of the Jalali calendar (month 13, Esfand 30 of a
    common year, ...).
    """
    parts = text.split("-")
    if [len(part) for part in parts] != [4, 2, 2] or not all(
        part.isascii() and part.isdigit() for part in parts
    ):
        raise ValueError(f"{text!r} is not a Jalali day written YYYY-MM-DD")
    year, month, day = (int(part) for part in parts)
    try:
        gregorian: date = jdatetime.date(year, month, day).togregorian()
    except ValueError as error:
        raise ValueError(f"{text!r} is not a day of the Jalali calendar") from error
    return gregorian


def jalali_day(day: date) -> str:
    """`day` in the Jalali calendar written "YYYY-MM-DD" (the inverse of `parse_jalali_day`)."""
    return jalali_date(day).replace("/", "-")


def _checked_jalali_day(text: str) -> str:
    parse_jalali_day(text)
    return text


JalaliDay = Annotated[
    str,
    StringConstraints(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"),
    AfterValidator(_checked_jalali_day),
    Field(description="A day of the Jalali calendar, `YYYY-MM-DD`, e.g. `1403-04-03`."),
]
