"""Abuse limits: how many code sends, sign-ins and registrations a subject may make in a
window (a national ID, a mobile, a client network, or the whole instance).

Counted in fixed windows in the process's memory: a limit costs no round trip, so the
sign-in path stays as fast as it was. They are per instance (with N instances behind a
balancer, a subject may make up to N times as many); lockouts, which must survive
restarts and hold across instances, are kept in the database (`attempts.py`, `codes.py`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

# Subjects tracked per limit at most: a flood of fresh subjects (IPv6 networks, invented
# national IDs) cannot grow memory without bound. Past it, the oldest windows are dropped;
# the overall limit still holds whatever is dropped.
MAX_SUBJECTS = 100_000


@dataclass(frozen=True)
class Limit:
    """At most `allowed` within each `window`, counted per subject; 0 turns it off."""

    name: str
    allowed: int
    window: timedelta


@dataclass
class _Window:
    started: datetime
    used: int


Charge = tuple[Limit, str]


class WindowCounters:
    """Fixed-window counters per limit and subject, bounded in memory."""

    def __init__(self, max_subjects: int = MAX_SUBJECTS) -> None:
        self._max_subjects = max_subjects
        self._windows: dict[str, dict[str, _Window]] = {}

    def take(self, charges: Sequence[Charge], now: datetime) -> tuple[Limit, datetime] | None:
        """Count one against every charge, if none of them is spent; else count nothing and
        name the limit that refused and when its window ends."""
        refusals: list[tuple[Limit, datetime]] = []
        for limit, subject in charges:
            if limit.allowed <= 0:
                continue
            window = self._current(limit, subject, now)
            if window is not None and window.used >= limit.allowed:
                refusals.append((limit, window.started + limit.window))
        if refusals:
            return max(refusals, key=lambda refusal: refusal[1])
        for limit, subject in charges:
            if limit.allowed <= 0:
                continue
            window = self._current(limit, subject, now)
            if window is None:
                self._start(limit, subject, now)
            else:
                window.used += 1
        return None

    def _current(self, limit: Limit, subject: str, now: datetime) -> _Window | None:
        window = self._windows.get(limit.name, {}).get(subject)
        if window is None or window.started + limit.window <= now:
            return None
        return window

    def _start(self, limit: Limit, subject: str, now: datetime) -> None:
        windows = self._windows.setdefault(limit.name, {})
        windows.pop(subject, None)  # re-inserted last: the dict stays oldest first
        if len(windows) >= self._max_subjects:
            for stale in [s for s, w in windows.items() if w.started + limit.window <= now]:
                del windows[stale]
            while len(windows) >= self._max_subjects:
                del windows[next(iter(windows))]
        windows[subject] = _Window(now, 1)
