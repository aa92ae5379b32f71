"""Citizens' identifiers: the national ID, the mobile number, the birth date, the pseudonym.

Users type these the way they are used to: Persian or Arabic-Indic digits, spaces and
dashes in the national ID, a mobile as 0912…, +98 912…, 0098912… The functions here turn
each into one canonical form or refuse it with a reason (`InvalidInput`).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import date
from typing import Literal

import jdatetime

from shared.errors import Invalid
from shared.persian import to_ascii_digits

Calendar = Literal["jalali", "gregorian"]

# What users put between digits; removed before validation.
_SEPARATORS = re.compile(r"[\s\-\u200c\u200e\u200f\u2010-\u2015\u2212_.]")


class InvalidInput(Invalid):
    """A value a citizen typed cannot be accepted; `code` names the problem, `reason` says why."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(code, reason)
        self.reason = reason


def _digits_only(text: str) -> str:
    return _SEPARATORS.sub("", to_ascii_digits(text.strip()))


def national_id_check_digit(first_nine: str) -> int:
    """The check digit of a national ID from its first nine digits (weights 10 down to 2)."""
    remainder = sum(int(digit) * (10 - position) for position, digit in enumerate(first_nine)) % 11
    return remainder if remainder < 2 else 11 - remainder


def is_valid_national_id(candidate: str) -> bool:
    """Whether ten ASCII digits form a valid national ID (check digit, not one repeated digit)."""
    if len(candidate) != 10 or not candidate.isascii() or not candidate.isdigit():
        return False
    if len(set(candidate)) == 1:
        return False
    return national_id_check_digit(candidate[:9]) == int(candidate[9])


def normalise_national_id(text: str) -> str:
    """The national ID as ten ASCII digits, or InvalidInput.

    Persian and Arabic-Indic digits become ASCII; spaces and dashes are dropped.
    """
    digits = _digits_only(text)
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidInput("invalid_national_id", "a national ID has only digits")
    if len(digits) != 10:
        raise InvalidInput("invalid_national_id", "a national ID has exactly 10 digits")
    if len(set(digits)) == 1:
        raise InvalidInput("invalid_national_id", "a national ID is not one digit repeated")
    if national_id_check_digit(digits[:9]) != int(digits[9]):
        raise InvalidInput("invalid_national_id", "the check digit of the national ID is wrong")
    return digits


def normalise_mobile(text: str) -> str:
    """An Iranian mobile number in E.164 (`+989XXXXXXXXX`), or InvalidInput.

    Accepts 09…, 9…, 989…, 00989… and +98 9…, with Persian digits, spaces, dashes and
    parentheses.
    """
    digits = _digits_only(text).replace("(", "").replace(")", "")
    if digits.startswith("+"):
        digits = digits[1:]
        if not digits.startswith("98"):
            raise InvalidInput("invalid_mobile", "only Iranian mobile numbers (+98) are accepted")
    elif digits.startswith("00"):
        digits = digits[2:]
        if not digits.startswith("98"):
            raise InvalidInput("invalid_mobile", "only Iranian mobile numbers (0098) are accepted")
    if not (digits.isascii() and digits.isdigit()):
        raise InvalidInput("invalid_mobile", "a mobile number has only digits")
    if len(digits) == 12 and digits.startswith("98"):
        national = digits[2:]
    elif len(digits) == 11 and digits.startswith("0"):
        national = digits[1:]
    elif len(digits) == 10:
        national = digits
    else:
        raise InvalidInput("invalid_mobile", "a mobile number has 11 digits, like 09121234567")
    if not national.startswith("9"):
        raise InvalidInput("invalid_mobile", "an Iranian mobile number starts with 09")
    return f"+98{national}"


def mask_mobile(mobile: str) -> str:
    """A mobile with its middle hidden, for logs and for showing the citizen where a code went."""
    return f"{mobile[:6]}***{mobile[-4:]}"


@dataclass(frozen=True)
class BirthDate:
    """A birth date, kept in the Gregorian calendar, shown in the Jalali one."""

    gregorian: date

    @property
    def jalali(self) -> str:
        return str(jdatetime.date.fromgregorian(date=self.gregorian).strftime("%Y/%m/%d"))


def parse_birth_date(text: str, calendar: Calendar | None, today: date) -> BirthDate:
    """A birth date given as YYYY-MM-DD or YYYY/MM/DD in either calendar, or InvalidInput.

    Without a calendar, a year before 1700 is read as Jalali (1300s and 1400s), later as
    Gregorian: the two calendars' years of living people never overlap.
    """
    parts = re.split(r"[-/.]", to_ascii_digits(text.strip()))
    if len(parts) != 3 or not all(p.isascii() and p.isdigit() for p in parts):
        raise InvalidInput("invalid_birth_date", "write the birth date as YYYY-MM-DD or YYYY/MM/DD")
    year, month, day = (int(p) for p in parts)
    chosen = calendar or ("jalali" if year < 1700 else "gregorian")
    try:
        if chosen == "jalali":
            born = jdatetime.date(year, month, day).togregorian()
        else:
            born = date(year, month, day)
    except ValueError:
        raise InvalidInput("invalid_birth_date", f"no such {chosen} date: {text}") from None
    if born > today:
        raise InvalidInput("invalid_birth_date", "the birth date is in the future")
    if born.year < 1900:
        raise InvalidInput("invalid_birth_date", "the birth date is before 1900")
    return BirthDate(born)


def pseudonym(national_id: str, key: bytes) -> str:
    """The citizen's pseudonymous id: HMAC-SHA-256 (hex) of the normalised national ID.

    Stable per person under one key, and not reversible without the key, although the
    space of national IDs is small: the key is what protects it.
    """
    return hmac.new(key, national_id.encode("ascii"), hashlib.sha256).hexdigest()
