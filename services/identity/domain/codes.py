"""One-time sign-in codes and the limits on guessing them.

A code is six random digits, kept only as a keyed hash bound to its challenge, so a
copy of the database does not reveal live codes; it is compared in constant time.
Failed attempts are counted per citizen and per client address; reaching the limit in
a window locks sign-in for that subject until a time the citizen is told.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from shared.jalali import jalali_moment

CODE_DIGITS = 6

LockScope = Literal["citizen", "client_address"]


def new_code() -> str:
    """Six digits from the system's secure random source."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def hash_code(code: str, challenge_id: str, key: bytes) -> bytes:
    """The stored form of a code: HMAC-SHA-256 keyed by the service, bound to its challenge."""
    return hmac.new(key, f"{challenge_id}:{code}".encode(), hashlib.sha256).digest()


def code_matches(code: str, challenge_id: str, key: bytes, stored: bytes) -> bool:
    """Whether a typed code is the challenge's code, in time independent of where they differ."""
    return hmac.compare_digest(hash_code(code, challenge_id, key), stored)


def sms_text(code: str, minutes: int) -> str:
    """The message the citizen receives, in Persian and English."""
    persian_code = code.translate(str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹"))
    return (
        f"کد ورود شما به پنجره ملی خدمات: {persian_code}\n"
        f"تا {minutes} دقیقه معتبر است؛ آن را به کسی ندهید.\n"
        f"Your Panjereh sign-in code: {code} (valid {minutes} min; never share it)."
    )


@dataclass(frozen=True)
class AttemptPolicy:
    """How many failures a subject may have in a window before it is locked, and for how long."""

    max_failures: int
    window: timedelta
    lockout: timedelta


@dataclass(frozen=True)
class Counter:
    """A subject's failed attempts in its current window, and any lock on it."""

    failures: int
    window_started: datetime
    locked_until: datetime | None

    def locked_at(self, now: datetime) -> bool:
        return self.locked_until is not None and self.locked_until > now


@dataclass(frozen=True)
class AfterFailure:
    """A counter after one more failure; `locked_now` when this failure caused the lock."""

    counter: Counter
    locked_now: bool
    failures_counted: int


def record_failure(counter: Counter, policy: AttemptPolicy, now: datetime) -> AfterFailure:
    """Count one failure; lock the subject when it reaches the policy's limit in the window."""
    if counter.window_started + policy.window <= now:
        counter = Counter(failures=0, window_started=now, locked_until=None)
    failures = counter.failures + 1
    if failures >= policy.max_failures:
        # The next window starts when the lock ends, with a clean slate.
        until = now + policy.lockout
        return AfterFailure(Counter(0, until, until), locked_now=True, failures_counted=failures)
    return AfterFailure(
        Counter(failures, counter.window_started, counter.locked_until),
        locked_now=False,
        failures_counted=failures,
    )


def retry_description(until: datetime, now: datetime) -> dict[str, object]:
    """When a locked subject may try again, for the problem document the citizen reads."""
    seconds = max(1, int((until - now).total_seconds() + 0.999))
    return {
        "retry_after_seconds": seconds,
        "locked_until": until.isoformat(),
        "locked_until_jalali": jalali_moment(until),
    }


def retry_sentence(until: datetime, now: datetime) -> str:
    """The same, as one sentence in Persian and English."""
    when = retry_description(until, now)
    seconds = when["retry_after_seconds"]
    persian_when = str(when["locked_until_jalali"]).translate(
        str.maketrans("0123456789", "۰۱۲۳۴۵۶۷۸۹")
    )
    return (
        f"پس از {persian_when} (به وقت تهران) دوباره تلاش کنید. / "
        f"Try again after {when['locked_until']} (in {seconds} seconds)."
    )
